//! secrets.ini with Debian's real `age` and `age-keygen`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use berth_fleet::secrets::{SecretsError, SecretsKey};

fn encrypt(recipient: &str, plain: &str, armor: bool) -> Vec<u8> {
    let mut cmd = Command::new("age");
    cmd.arg("-r").arg(recipient);
    if armor {
        cmd.arg("-a");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plain.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[tokio::test]
async fn encrypted_to_the_server_it_opens_plaintext_and_foreign_files_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let key = SecretsKey::in_dir(&keys);
    key.ensure().await.unwrap();
    let mode = std::fs::metadata(keys.join("age.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A second ensure keeps the identity.
    let recipient = key.recipient().await.unwrap();
    key.ensure().await.unwrap();
    assert_eq!(key.recipient().await.unwrap(), recipient);
    assert!(recipient.starts_with("age1"), "{recipient}");

    let plain = "[env]\nTOKEN = hunter2\n[passphrases]\nweb.key = open sesame\n";
    for armor in [true, false] {
        let secrets = key.open(&encrypt(&recipient, plain, armor)).await.unwrap();
        assert_eq!(secrets.env["TOKEN"].expose(), "hunter2");
        assert_eq!(secrets.passphrases["web.key"].expose(), "open sesame");
    }

    // Committed in plaintext: refused, and the error says how to fix it without the values.
    let err = key.open(plain.as_bytes()).await.unwrap_err();
    assert!(matches!(err, SecretsError::Plaintext), "{err}");
    assert!(err.to_string().contains("age-keygen -y") && !err.to_string().contains("hunter2"));

    // Encrypted to someone else: refused.
    let other = SecretsKey::in_dir(&dir.path().join("other"));
    other.ensure().await.unwrap();
    let foreign = encrypt(&other.recipient().await.unwrap(), plain, true);
    let err = key.open(&foreign).await.unwrap_err();
    assert!(matches!(err, SecretsError::Decrypt(_)), "{err}");

    // A syntax error inside the encrypted file names the line only.
    let bad = encrypt(&recipient, "[env]\nhunter2\n", true);
    let err = key.open(&bad).await.unwrap_err();
    assert_eq!(err.to_string(), "secrets.ini:2: expected KEY = VALUE");

    // An identity others can read is not used.
    std::fs::set_permissions(keys.join("age.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = key
        .open(&encrypt(&recipient, plain, true))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretsError::Key(_)), "{err}");
}
