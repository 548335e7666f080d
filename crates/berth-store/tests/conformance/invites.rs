//! [`berth_store::InviteStore`]: insert and list, one use per code (also when two sign-ups race
//! for it), expired and unknown codes, release, delete and renames.

use std::sync::Arc;

use berth_store::{InviteRecord, InviteUse, Store, StoreError};
use berth_types::InviteId;
use time::macros::datetime;

use crate::support::TestDb;
use crate::{at, user};

stories!(
    invites_round_trip,
    an_invite_is_used_once,
    concurrent_uses_have_one_winner,
    expired_and_unknown_codes_are_refused,
    invites_follow_renames,
);

/// A code's hash: any 64 lowercase hex digits will do for the store.
fn hash(n: u32) -> String {
    format!("{n:064x}")
}

/// An unused invite made by `by` `created` seconds after [`crate::T0`], valid for a day (not
/// stored).
fn invite(by: &str, n: u32, created: i64) -> InviteRecord {
    InviteRecord {
        id: InviteId::random(),
        code_hash: hash(n),
        created_by: user(by),
        note: format!("course {n}"),
        created_at: at(created),
        expires_at: at(created + 86_400),
        used_by: None,
        used_at: None,
    }
}

fn accepted(answer: InviteUse) -> InviteRecord {
    match answer {
        InviteUse::Accepted(invite) => invite,
        other => panic!("expected the code to be accepted, got {other:?}"),
    }
}

async fn invites_round_trip(db: &TestDb) {
    let store = &db.store;
    let mut first = invite("root", 1, 0);
    first.created_at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
    let second = invite("root", 2, 10);
    let mut used = invite("admin", 3, 5);
    used.used_by = Some(user("carol"));
    used.used_at = Some(at(7));
    for i in [&first, &second, &used] {
        store.insert_invite(i).await.unwrap();
    }
    let listed = store.list_invites().await.unwrap();
    let first_stored = InviteRecord {
        created_at: datetime!(2024-05-01 12:00:00.123456 UTC),
        ..first.clone()
    };
    assert_eq!(
        listed,
        vec![second.clone(), used.clone(), first_stored],
        "newest first"
    );

    // Taken ids and codes are conflicts that say which, never showing the hash.
    match store.insert_invite(&first).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains(&first.id.to_string()), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let same_code = InviteRecord {
        id: InviteId::random(),
        ..second.clone()
    };
    match store.insert_invite(&same_code).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("code"), "{message}");
            assert!(!message.contains(&second.code_hash), "{message}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Anything but a SHA-256 in lowercase hex is refused, and so is half a use.
    for bad in [
        String::new(),
        "abc".to_owned(),
        hash(4).to_uppercase().replace('0', "A"),
        format!("{}g", &hash(4)[1..]),
        format!("{}0", hash(4)),
    ] {
        let i = InviteRecord {
            code_hash: bad.clone(),
            ..invite("root", 4, 0)
        };
        assert!(
            matches!(
                store.insert_invite(&i).await,
                Err(StoreError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    let half = InviteRecord {
        used_by: Some(user("dave")),
        ..invite("root", 5, 0)
    };
    assert!(matches!(
        store.insert_invite(&half).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(store.list_invites().await.unwrap().len(), 3);

    // The database refuses a malformed hash or half a use on its own too.
    let id = "00000000-0000-4000-8000-000000000001";
    let t = "2024-05-01T12:00:00.000000Z";
    for (code, used_by, used_at) in [
        (
            hash(6).to_uppercase().replace('0', "F"),
            "NULL",
            "NULL".to_owned(),
        ),
        ("abc".to_owned(), "NULL", "NULL".to_owned()),
        (hash(6), "'dave'", "NULL".to_owned()),
        (hash(6), "NULL", format!("'{t}'")),
    ] {
        let sql = format!(
            "INSERT INTO invites (id, code_hash, created_by, note, created_at, expires_at, \
             used_by, used_at) VALUES ('{id}', '{code}', 'root', '', '{t}', '{t}', {used_by}, \
             {used_at})"
        );
        assert!(db.execute_raw(&sql).await.is_err(), "{sql}");
    }
}

async fn an_invite_is_used_once(db: &TestDb) {
    let store = &db.store;
    let i = invite("root", 1, 0);
    store.insert_invite(&i).await.unwrap();

    let used = accepted(
        store
            .use_invite(&i.code_hash, &user("alice"), at(60))
            .await
            .unwrap(),
    );
    assert_eq!(
        used,
        InviteRecord {
            used_by: Some(user("alice")),
            used_at: Some(at(60)),
            ..i.clone()
        }
    );
    assert_eq!(store.list_invites().await.unwrap(), vec![used.clone()]);
    assert_eq!(
        store
            .use_invite(&i.code_hash, &user("bob"), at(61))
            .await
            .unwrap(),
        InviteUse::AlreadyUsed
    );
    // Used stays used once it would have expired, too.
    assert_eq!(
        store
            .use_invite(&i.code_hash, &user("bob"), at(100_000))
            .await
            .unwrap(),
        InviteUse::AlreadyUsed
    );

    // alice's account could not be made: the code is free again, for anyone.
    store.release_invite(i.id).await.unwrap();
    assert_eq!(store.list_invites().await.unwrap(), vec![i.clone()]);
    store.release_invite(i.id).await.unwrap(); // nothing to undo: no error
    let bobs = accepted(
        store
            .use_invite(&i.code_hash, &user("bob"), at(70))
            .await
            .unwrap(),
    );
    assert_eq!(bobs.used_by, Some(user("bob")));
    assert_eq!(bobs.used_at, Some(at(70)));
    assert!(matches!(
        store.release_invite(InviteId::random()).await,
        Err(StoreError::NotFound)
    ));
}

async fn concurrent_uses_have_one_winner(db: &TestDb) {
    // Several codes, each raced for by two sign-ups at once.
    for n in 0..10 {
        let i = invite("root", n, 0);
        db.store.insert_invite(&i).await.unwrap();
        let tasks: Vec<_> = ["alice", "bob"]
            .into_iter()
            .map(|name| {
                let store: Arc<dyn Store> = Arc::clone(&db.store);
                let code = i.code_hash.clone();
                tokio::spawn(async move { store.use_invite(&code, &user(name), at(60)).await })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                InviteUse::Accepted(record) => winners.push(record.used_by.unwrap()),
                InviteUse::AlreadyUsed => {}
                other => panic!("unexpected answer: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let stored = db.store.list_invites().await.unwrap();
        let stored = stored.iter().find(|s| s.id == i.id).unwrap();
        assert_eq!(stored.used_by.as_ref(), Some(&winners[0]));
    }
}

async fn expired_and_unknown_codes_are_refused(db: &TestDb) {
    let store = &db.store;
    let i = invite("root", 1, 0);
    store.insert_invite(&i).await.unwrap();
    // At its expiry instant it is over; nothing changes.
    assert_eq!(
        store
            .use_invite(&i.code_hash, &user("alice"), i.expires_at)
            .await
            .unwrap(),
        InviteUse::Expired
    );
    assert_eq!(store.list_invites().await.unwrap(), vec![i.clone()]);
    assert_eq!(
        store
            .use_invite(&hash(2), &user("alice"), at(60))
            .await
            .unwrap(),
        InviteUse::Unknown
    );
    assert!(matches!(
        store.use_invite("not a hash", &user("alice"), at(60)).await,
        Err(StoreError::InvalidInput(_))
    ));
    // Just before its expiry it is still good.
    let last_moment = i.expires_at - time::Duration::microseconds(1);
    accepted(
        store
            .use_invite(&i.code_hash, &user("alice"), last_moment)
            .await
            .unwrap(),
    );

    // A deleted invite's code is unknown.
    let other = invite("root", 3, 0);
    store.insert_invite(&other).await.unwrap();
    store.delete_invite(other.id).await.unwrap();
    assert_eq!(
        store
            .use_invite(&other.code_hash, &user("bob"), at(60))
            .await
            .unwrap(),
        InviteUse::Unknown
    );
    assert!(matches!(
        store.delete_invite(other.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_invites().await.unwrap().len(), 1);
}

async fn invites_follow_renames(db: &TestDb) {
    let store = &db.store;
    let a = invite("root", 1, 0);
    let b = invite("root", 2, 10);
    let c = invite("admin", 3, 20);
    for i in [&a, &b, &c] {
        store.insert_invite(i).await.unwrap();
    }
    accepted(
        store
            .use_invite(&a.code_hash, &user("alice"), at(30))
            .await
            .unwrap(),
    );
    // An admin who was invited once: both fields move.
    accepted(
        store
            .use_invite(&c.code_hash, &user("root"), at(40))
            .await
            .unwrap(),
    );

    assert_eq!(
        store
            .rename_invites(&user("root"), &user("admin0"))
            .await
            .unwrap(),
        3,
        "made two, used one"
    );
    assert_eq!(
        store
            .rename_invites(&user("alice"), &user("alicia"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .rename_invites(&user("nobody"), &user("somebody"))
            .await
            .unwrap(),
        0
    );
    let listed = store.list_invites().await.unwrap();
    let by_id = |id: InviteId| listed.iter().find(|i| i.id == id).unwrap();
    assert_eq!(by_id(a.id).created_by, user("admin0"));
    assert_eq!(by_id(a.id).used_by, Some(user("alicia")));
    assert_eq!(by_id(b.id).created_by, user("admin0"));
    assert_eq!(by_id(b.id).used_by, None);
    assert_eq!(by_id(c.id).created_by, user("admin"));
    assert_eq!(by_id(c.id).used_by, Some(user("admin0")));
}
