use super::*;

fn f(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

fn known(uid: u32, seen: &str, local: Option<&str>) -> Synced {
    Synced { uid, message: u64::from(uid) + 100, seen: f(seen), local: local.map(f) }
}

fn listing(uids: &[u32], flags: &[(u32, &str)]) -> Listing {
    Listing { uids: uids.iter().copied().collect(), flags: flags.iter().map(|(u, l)| (*u, f(l))).collect() }
}

#[test]
fn each_rule_of_a_pass() {
    struct Case {
        what: &'static str,
        listing: Listing,
        known: Vec<Synced>,
        fetch: Vec<u32>,
        removed: Vec<u32>,
        from_source: Vec<(u32, &'static str)>,
        push: Vec<(u32, &'static str, &'static str)>,
    }
    let cases = [
        Case {
            what: "first import: everything listed is fetched",
            listing: listing(&[1, 2, 5], &[(1, "\\Seen"), (2, ""), (5, "")]),
            known: vec![],
            fetch: vec![1, 2, 5],
            removed: vec![],
            from_source: vec![],
            push: vec![],
        },
        Case {
            what: "nothing changed on either side",
            listing: listing(&[1, 2], &[(1, "\\Seen"), (2, "")]),
            known: vec![known(1, "\\Seen", Some("\\Seen")), known(2, "", Some(""))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![],
            push: vec![],
        },
        Case {
            what: "new at the source, and one removed there",
            listing: listing(&[2, 3], &[]),
            known: vec![known(1, "", Some("")), known(2, "", Some(""))],
            fetch: vec![3],
            removed: vec![1],
            from_source: vec![],
            push: vec![],
        },
        Case {
            what: "a tombstone is never fetched again, and leaves with its source message",
            listing: listing(&[1, 2], &[]),
            known: vec![known(1, "", None), known(3, "", None)],
            fetch: vec![2],
            removed: vec![3],
            from_source: vec![],
            push: vec![],
        },
        Case {
            what: "flag set at the source comes here",
            listing: listing(&[1], &[(1, "\\Seen $Work")]),
            known: vec![known(1, "", Some(""))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![(1, "\\Seen $Work")],
            push: vec![],
        },
        Case {
            what: "flag set here goes to the source",
            listing: listing(&[1], &[(1, "\\Seen")]),
            known: vec![known(1, "\\Seen", Some("\\Seen \\Flagged"))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![],
            push: vec![(1, "\\Flagged", "")],
        },
        Case {
            what: "flag cleared here is cleared at the source",
            listing: listing(&[1], &[]),
            known: vec![known(1, "\\Seen \\Answered", Some("\\Answered"))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![],
            push: vec![(1, "", "\\Seen")],
        },
        Case {
            what: "a conflict: the source wins",
            listing: listing(&[1], &[(1, "\\Answered")]),
            known: vec![known(1, "", Some("\\Flagged"))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![(1, "\\Answered")],
            push: vec![],
        },
        Case {
            what: "case and unsynced flags do not count as changes",
            listing: listing(&[1], &[(1, "\\seen \\Recent \\Deleted")]),
            known: vec![known(1, "\\Seen", Some("\\SEEN $RemovedAtSource"))],
            fetch: vec![],
            removed: vec![],
            from_source: vec![],
            push: vec![],
        },
        Case {
            what: "a tombstone's flags at the source are remembered, nothing is pushed",
            listing: listing(&[1], &[(1, "\\Seen")]),
            known: vec![known(1, "", None)],
            fetch: vec![],
            removed: vec![],
            from_source: vec![(1, "\\Seen")],
            push: vec![],
        },
    ];
    for c in cases {
        let p = plan(&c.listing, &c.known);
        assert_eq!(p.fetch, c.fetch, "{}: fetch", c.what);
        assert_eq!(p.changes.removed, c.removed, "{}: removed", c.what);
        let from: Vec<(u32, Vec<String>)> = c.from_source.iter().map(|(u, l)| (*u, f(l))).collect();
        assert_eq!(p.changes.from_source, from, "{}: from source", c.what);
        let push: Vec<(u32, Vec<String>, Vec<String>)> =
            p.push.iter().map(|p| (p.uid, p.add.clone(), p.remove.clone())).collect();
        let want: Vec<(u32, Vec<String>, Vec<String>)> = c.push.iter().map(|(u, a, r)| (*u, f(a), f(r))).collect();
        assert_eq!(push, want, "{}: push", c.what);
    }
}

#[test]
fn a_push_records_what_the_source_will_hold() {
    let p = plan(&listing(&[7], &[]), &[known(7, "\\Seen", Some("\\Seen \\Flagged $RemovedAtSource"))]);
    assert_eq!(p.push[0].result, f("\\Seen \\Flagged"));
}

#[test]
fn uid_sets_are_ranges_in_bounded_sets() {
    assert_eq!(uid_sets(&[1, 2, 3, 5, 7, 8], 100), ["1:3,5,7:8"]);
    assert_eq!(uid_sets(&[1, 2, 3, 4], 2), ["1:2", "3:4"]);
    assert_eq!(uid_sets(&[u32::MAX - 1, u32::MAX], 10), [format!("{}:{}", u32::MAX - 1, u32::MAX)]);
    assert!(uid_sets(&[], 10).is_empty());
}

#[test]
fn batches_are_bounded_by_count_and_bytes() {
    let sizes = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 1)];
    assert_eq!(batches(&sizes, 2, 1000), vec![vec![1, 2], vec![3, 4], vec![5]]);
    assert_eq!(batches(&sizes, 10, 35), vec![vec![1, 2, 3], vec![4], vec![5]]);
    // One message larger than the byte bound still goes, alone.
    assert_eq!(batches(&[(9, 500)], 10, 100), vec![vec![9]]);
}

#[test]
fn local_paths_keep_levels_and_map_what_gatepost_cannot_hold() {
    assert_eq!(local_path("work", "inbox", Some("/")), "Accounts/work/INBOX");
    assert_eq!(local_path("work", "INBOX.Lists.rust", Some(".")), "Accounts/work/INBOX/Lists/rust");
    assert_eq!(local_path("work", "Projects/2026", Some("/")), "Accounts/work/Projects/2026");
    assert_eq!(local_path("work", "a/b", Some(".")), "Accounts/work/a\u{2215}b");
    assert_eq!(local_path("work", "50% * off", None), "Accounts/work/50\u{066A} \u{2217} off");
    assert_eq!(local_path("work", "a..b", Some(".")), "Accounts/work/a/_/b");
    // A name too long for gatepost is cut, and stays unique by a hash.
    let long = "x".repeat(2000);
    let (a, b) = (local_path("w", &format!("{long}1"), None), local_path("w", &format!("{long}2"), None));
    assert!(a.len() <= 1000 && a != b, "{} {}", a.len(), b.len());
    // Every result is a valid mailbox name.
    for remote in ["a\u{7}b", "/", "..", "x/y/z", "INBOX/Sub", &"é/".repeat(600)] {
        let p = local_path("w", remote, Some("."));
        crate::mailstore::db::canonical_name(&p).unwrap_or_else(|e| panic!("{remote:?} → {p:?}: {e}"));
    }
}
