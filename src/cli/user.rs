//! `gatepost user …`: the operator's user management.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use gatepost::accounts;

use super::output::{self, value};
use super::{open_store, read_password};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a verified user.
    Add {
        name: String,
        #[arg(long)]
        email: String,
        /// Read the password from this file instead of prompting.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List users.
    List,
    /// Set a user's password.
    Passwd {
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Disable a user: AUTH is refused from now on.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// Set the timezone the user's schedules are read in.
    SetTimezone { name: String, zone: String },
}

pub fn run(config: &Path, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let (_, store) = open_store(config)?;
    let now = jiff::Timestamp::now();
    match cmd {
        UserCommand::Add { name, email, password_file } => {
            accounts::validate_name(&name)?;
            accounts::validate_email(&email)?;
            if store.get_user(&name)?.is_some() {
                anyhow::bail!("user {name:?} already exists");
            }
            let pw = read_password(password_file.as_deref(), &format!("Password for {name}: "))?;
            accounts::add_user(&store, &name, &email, &pw, now)?;
            output::println(&format!("added user {name} <{email}> (verified)"))?;
        }
        UserCommand::List => {
            let mut table = format!("{:<20} {:<32} {:<9} {:<9} TIMEZONE\n", "NAME", "EMAIL", "VERIFIED", "DISABLED");
            for u in store.list_users()? {
                let tz = u.timezone.as_deref().unwrap_or("(default)");
                table += &format!(
                    "{:<20} {:<32} {:<9} {:<9} {}\n",
                    value(&u.name),
                    value(&u.email),
                    u.verified,
                    u.disabled,
                    value(tz)
                );
            }
            output::print(&table)?;
        }
        UserCommand::Passwd { name, password_file } => {
            if store.get_user(&name)?.is_none() {
                anyhow::bail!("no user {name:?}");
            }
            let pw = read_password(password_file.as_deref(), &format!("New password for {name}: "))?;
            accounts::validate_password(&pw)?;
            accounts::update_user(&store, &name, |u| {
                u.password_hash = accounts::hash_password(&pw);
                Ok(())
            })?;
            output::println(&format!("password of {name} changed"))?;
        }
        UserCommand::Disable { name } => {
            accounts::update_user(&store, &name, |u| {
                u.disabled = true;
                Ok(())
            })?;
            output::println(&format!("user {name} disabled"))?;
        }
        UserCommand::Enable { name } => {
            accounts::update_user(&store, &name, |u| {
                u.disabled = false;
                Ok(())
            })?;
            output::println(&format!("user {name} enabled"))?;
        }
        UserCommand::SetTimezone { name, zone } => {
            accounts::validate_timezone(&zone)?;
            accounts::update_user(&store, &name, |u| {
                u.timezone = Some(zone.clone());
                Ok(())
            })?;
            output::println(&format!("timezone of {name} set to {zone}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
