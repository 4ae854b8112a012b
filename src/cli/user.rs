//! `gatepost user …`: the operator's user management.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use gatepost::accounts;

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
            let pw = read_password(password_file.as_deref(), &format!("Password for {name}: "))?;
            accounts::add_user(&store, &name, &email, &pw, now)?;
            println!("added user {name} <{email}> (verified)");
        }
        UserCommand::List => {
            println!("{:<20} {:<32} {:<9} {:<9} TIMEZONE", "NAME", "EMAIL", "VERIFIED", "DISABLED");
            for u in store.list_users()? {
                let tz = u.timezone.as_deref().unwrap_or("(default)");
                println!("{:<20} {:<32} {:<9} {:<9} {tz}", u.name, u.email, u.verified, u.disabled);
            }
        }
        UserCommand::Passwd { name, password_file } => {
            let pw = read_password(password_file.as_deref(), &format!("New password for {name}: "))?;
            accounts::validate_password(&pw)?;
            accounts::update_user(&store, &name, |u| {
                u.password_hash = accounts::hash_password(&pw);
                Ok(())
            })?;
            println!("password of {name} changed");
        }
        UserCommand::Disable { name } => {
            accounts::update_user(&store, &name, |u| {
                u.disabled = true;
                Ok(())
            })?;
            println!("user {name} disabled");
        }
        UserCommand::Enable { name } => {
            accounts::update_user(&store, &name, |u| {
                u.disabled = false;
                Ok(())
            })?;
            println!("user {name} enabled");
        }
        UserCommand::SetTimezone { name, zone } => {
            accounts::validate_timezone(&zone)?;
            accounts::update_user(&store, &name, |u| {
                u.timezone = Some(zone.clone());
                Ok(())
            })?;
            println!("timezone of {name} set to {zone}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
