//! [`berth_store::WebSessionStore`]: web sessions saved, touched, listed and deleted by hash.

use berth_store::{StoreError, WebSession};
use berth_types::UserId;

use crate::support::TestDb;
use crate::{at, user};

stories!(web_sessions_are_saved_touched_listed_and_deleted,);

fn web_session(hash_digit: char, name: &str, user_id: Option<UserId>, seconds: i64) -> WebSession {
    WebSession {
        id_hash: hash_digit.to_string().repeat(64),
        username: user(name),
        user_id,
        password_fingerprint: format!("fp-{name}"),
        csrf: format!("csrf-{name}-é"),
        created_at: at(seconds),
        last_seen: at(seconds),
    }
}

async fn web_sessions_are_saved_touched_listed_and_deleted(db: &TestDb) {
    let store = &db.store;
    assert!(store.list_sessions().await.unwrap().is_empty());
    let bob_id = UserId::random();
    let admin = web_session('a', "admin", None, 5);
    let bob = web_session('b', "bob", Some(bob_id), 1);
    store
        .save_sessions(&[admin.clone(), bob.clone()])
        .await
        .unwrap();
    store.save_sessions(&[]).await.unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        [bob.clone(), admin.clone()],
        "oldest first"
    );

    // Saving again moves the last use only: what the login fixed stays.
    let touched = WebSession {
        last_seen: at(90),
        csrf: "changed".into(),
        password_fingerprint: "changed".into(),
        created_at: at(80),
        ..bob.clone()
    };
    store.save_sessions(&[touched]).await.unwrap();
    let listed = store.list_sessions().await.unwrap();
    assert_eq!(
        listed[0],
        WebSession {
            last_seen: at(90),
            ..bob.clone()
        }
    );
    assert_eq!(listed[0].user_id, Some(bob_id));
    assert_eq!(listed[1].user_id, None);

    // Unknown hashes are ignored; known ones go.
    store
        .delete_sessions(&[bob.id_hash.clone(), "c".repeat(64)])
        .await
        .unwrap();
    store.delete_sessions(&[]).await.unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        std::slice::from_ref(&admin)
    );

    // A row that no longer reads is skipped, not the end of every session.
    db.execute_raw(&format!(
        "INSERT INTO web_sessions (id_hash, username, user_id, password_fingerprint, csrf, \
         created_at, last_seen) SELECT '{}', 'Not A Name', user_id, password_fingerprint, csrf, \
         created_at, last_seen FROM web_sessions WHERE id_hash = '{}'",
        "d".repeat(64),
        admin.id_hash
    ))
    .await
    .unwrap();
    assert_eq!(
        store.list_sessions().await.unwrap(),
        std::slice::from_ref(&admin)
    );
    store.delete_sessions(&["d".repeat(64)]).await.unwrap();

    // Something that is not a hash is refused and nothing of the batch is written.
    let bad = WebSession {
        id_hash: "not-a-hash".into(),
        ..web_session('d', "dave", None, 9)
    };
    let upper = WebSession {
        id_hash: "A".repeat(64),
        ..web_session('e', "eve", None, 9)
    };
    for hostile in [bad, upper] {
        let fresh = web_session('f', "fred", None, 9);
        let err = store.save_sessions(&[fresh, hostile]).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
        assert_eq!(
            store.list_sessions().await.unwrap(),
            std::slice::from_ref(&admin)
        );
    }
}
