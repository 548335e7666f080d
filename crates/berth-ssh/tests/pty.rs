//! A login shell on a PTY on a real SSH test machine, through berth-terminal's `Pty`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_terminal::{Pty, TtySize};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Reads until `needle` shows up; fails with what was read after the patience runs out.
async fn read_until(pty: &mut Pty, seen: &mut Vec<u8>, needle: &str) {
    let found = tokio::time::timeout(common::PATIENCE, async {
        while !String::from_utf8_lossy(seen).contains(needle) {
            match pty.next().await {
                Some(chunk) => seen.extend_from_slice(&chunk.unwrap()),
                None => return false,
            }
        }
        true
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no {needle:?} in {:?}",
        String::from_utf8_lossy(seen)
    );
}

#[tokio::test]
async fn stty_sees_the_size_and_the_resize_and_exit_gives_the_code() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[0]).await;
    let mut pty = berth_ssh::open_pty(&session, TtySize { cols: 91, rows: 27 }, "xterm-256color")
        .await
        .unwrap();
    let mut seen = Vec::new();
    // The markers are computed by the shell, so the echoed command line does not match.
    pty.write_all(b"echo \"size=$(stty size)=$((40+2))\"\n")
        .await
        .unwrap();
    read_until(&mut pty, &mut seen, "size=27 91=42").await;

    pty.resize(TtySize {
        cols: 120,
        rows: 40,
    })
    .await
    .unwrap();
    seen.clear();
    pty.write_all(b"echo \"size=$(stty size)=$((40+3))\"; echo \"term=$TERM=$((1+1))\"\n")
        .await
        .unwrap();
    read_until(&mut pty, &mut seen, "size=40 120=43").await;
    read_until(&mut pty, &mut seen, "term=xterm-256color=2").await;

    // A login shell.
    seen.clear();
    pty.write_all(b"shopt -q login_shell && echo \"login=$((5+5))\"\n")
        .await
        .unwrap();
    read_until(&mut pty, &mut seen, "login=10").await;

    pty.write_all(b"exit 3\n").await.unwrap();
    let collected = tokio::time::timeout(common::PATIENCE, pty.collect(1 << 16))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collected.exit_code, 3);
}

#[tokio::test]
async fn hang_up_ends_the_shell() {
    let Some(lab) = common::lab() else { return };
    let session = lab.connect(lab.plain()[1]).await;
    let mut pty = berth_ssh::open_pty(&session, TtySize::DEFAULT, "xterm")
        .await
        .unwrap();
    let marker = format!("berth-hup-{}", std::process::id());
    pty.write_all(format!("exec -a {marker} sleep 600\n").as_bytes())
        .await
        .unwrap();
    let (_, _, status) = wait_for_pgrep(&session, &marker, 0).await;
    assert_eq!(status, berth_ssh::ExitStatus::Code(0));
    let control = pty.control();
    control.hang_up().await.unwrap();
    // The output ends and nothing is left on the machine.
    tokio::time::timeout(common::PATIENCE, async {
        while pty.next().await.is_some() {}
    })
    .await
    .unwrap();
    let (out, _, status) = wait_for_pgrep(&session, &marker, 1).await;
    assert_eq!(status, berth_ssh::ExitStatus::Code(1), "left: {out}");
}

/// Polls `pgrep -f marker` until it exits with `code` (processes start and end asynchronously).
async fn wait_for_pgrep(
    session: &berth_ssh::Session,
    marker: &str,
    code: u32,
) -> (String, String, berth_ssh::ExitStatus) {
    let mut last = None;
    for _ in 0..100 {
        let result = common::run(session, &format!("pgrep -f {marker}")).await;
        if result.2 == berth_ssh::ExitStatus::Code(code) {
            return result;
        }
        last = Some(result);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    last.unwrap()
}

#[tokio::test]
async fn a_pty_that_is_not_read_holds_the_shell_back() {
    let Some(lab) = common::lab() else { return };
    let machine = lab.plain()[2.min(lab.plain().len() - 1)];
    let session = lab.connect(machine).await;
    // A held-back channel holds back its whole connection (russh stops reading the socket), so
    // the checks go over a second one.
    let probe = lab.connect(machine).await;
    let mut pty = berth_ssh::open_pty(&session, TtySize::DEFAULT, "xterm")
        .await
        .unwrap();
    // 32 MiB of output, then a marker file: the shell gets there only if the output was taken.
    let flag = format!("/tmp/berth-pty-done-{}", std::process::id());
    pty.write_all(
        format!("rm -f {flag}; head -c 33554432 /dev/zero | tr '\\0' x; touch {flag}\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = 0usize;
    while seen < 4096 {
        seen += pty.next().await.unwrap().unwrap().len();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, _, status) = common::run(&probe, &format!("test -e {flag}")).await;
    assert_eq!(
        status,
        berth_ssh::ExitStatus::Code(1),
        "the shell ran ahead of its reader"
    );
    // Reading it all lets the shell finish.
    let mut tail = Vec::new();
    let finished = tokio::time::timeout(common::PATIENCE, async {
        loop {
            let chunk = pty.next().await.unwrap().unwrap();
            tail.extend_from_slice(&chunk);
            if tail.len() > 256 {
                tail.drain(..tail.len() - 256);
            }
            if String::from_utf8_lossy(&chunk).contains('$') || tail.ends_with(b"$ ") {
                break;
            }
        }
    })
    .await;
    assert!(finished.is_ok(), "the prompt came back");
    let (_, _, status) = common::run(&probe, &format!("test -e {flag} && rm {flag}")).await;
    assert_eq!(status, berth_ssh::ExitStatus::Code(0));
}
