//! Exec sessions against the real Docker Engine: output, input, exit codes, PTY resize, the
//! shared tmux session and the shell fallback.

mod common;

use berth_runtime::{ContainerRuntime, ExecSpec, RuntimeError};
use berth_terminal::TtySize;
use common::{Scope, read_until};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt;

const SIZE: TtySize = TtySize { cols: 80, rows: 24 };

#[tokio::test]
async fn output_of_echo_comes_back_with_and_without_a_terminal() {
    let scope = Scope::new("echo").await;
    let id = scope.running(&scope.spec("c")).await;
    assert_eq!(
        scope.run(&id, &["echo", "hi"]).await,
        ("hi\n".to_owned(), 0)
    );

    let session = scope
        .rt
        .exec(&id, ExecSpec::terminal(["echo", "hi"], SIZE))
        .await
        .unwrap();
    let outcome = session.collect(4096).await.unwrap();
    assert_eq!(
        (outcome.output.as_slice(), outcome.exit_code),
        (&b"hi\r\n"[..], 0)
    );
}

#[tokio::test]
async fn exit_codes_and_stdin_reach_the_caller() {
    let scope = Scope::new("exit").await;
    let id = scope.running(&scope.spec("c")).await;
    assert_eq!(
        scope.run(&id, &["sh", "-c", "echo oops >&2; exit 3"]).await,
        ("oops\n".to_owned(), 3)
    );

    let mut cat = ExecSpec::command(["cat"]);
    cat.stdin = true;
    let mut session = scope.rt.exec(&id, cat).await.unwrap();
    session.write_all(b"through stdin").await.unwrap();
    session.shutdown().await.unwrap(); // EOF for cat
    let outcome = session.collect(4096).await.unwrap();
    assert_eq!(
        (outcome.output.as_slice(), outcome.exit_code),
        (&b"through stdin"[..], 0)
    );

    let big = scope
        .rt
        .exec(
            &id,
            ExecSpec::command(["head", "-c", "100000", "/dev/zero"]),
        )
        .await
        .unwrap();
    let outcome = big.collect(1000).await.unwrap();
    assert_eq!(
        (outcome.output.len(), outcome.truncated, outcome.exit_code),
        (1000, true, 0)
    );
}

#[tokio::test]
async fn output_arrives_whole_across_frames_and_binary_passes_a_terminal() {
    let scope = Scope::new("bytes").await;
    let id = scope.running(&scope.spec("c")).await;
    // One stream over many frames: every line, in order.
    for (stream, redirect) in [("out", "2>/dev/null"), ("err", ">/dev/null")] {
        let script = format!(
            r#"for i in $(seq 1 2000); do echo "out $i"; echo "err $i" >&2; done {redirect}"#
        );
        let (out, code) = scope.run(&id, &["sh", "-c", &script]).await;
        assert_eq!(code, 0);
        let want: Vec<String> = (1..=2000).map(|i| format!("{stream} {i}")).collect();
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            want,
            "{stream} lines out of order or missing"
        );
    }
    // Both streams interleaved: nothing lost, nothing extra. (The engine reads each pipe in
    // chunks, so under load a chunk of one stream may end inside a line and a chunk of the
    // other come between: the bytes are all there, their lines need not be whole.)
    let script = r#"for i in $(seq 1 2000); do echo "out $i"; echo "err $i" >&2; done"#;
    let (out, code) = scope.run(&id, &["sh", "-c", script]).await;
    assert_eq!(code, 0);
    let mut got = out.into_bytes();
    let mut want: Vec<u8> = (1..=2000)
        .flat_map(|i| format!("out {i}\nerr {i}\n").into_bytes())
        .collect();
    got.sort_unstable();
    want.sort_unstable();
    assert!(
        got == want,
        "bytes lost or added: {} against {}",
        got.len(),
        want.len()
    );
    let (out, _) = scope
        .run(&id, &["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"])
        .await;
    assert_eq!(out.len(), 300_000);
    assert!(out.bytes().all(|b| b == b'x'));

    // Output that looks like a multiplexing header with a 4 GiB frame must pass a PTY as is.
    let binary = r"printf '\001\000\002\000\377\377\377\377binary-ok'";
    let session = scope
        .rt
        .exec(&id, ExecSpec::terminal(["sh", "-c", binary], SIZE))
        .await
        .unwrap();
    let outcome = tokio::time::timeout(common::PATIENCE, session.collect(4096))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.output, b"\x01\x00\x02\x00\xff\xff\xff\xffbinary-ok");
}

#[tokio::test]
async fn terminal_takes_input_and_resizes() {
    let scope = Scope::new("resize").await;
    let id = scope.running(&scope.spec("c")).await;
    let mut shell = scope
        .rt
        .exec(&id, ExecSpec::terminal(["/bin/bash", "--norc"], SIZE))
        .await
        .unwrap();
    shell.write_all(b"stty size\r").await.unwrap();
    read_until(&mut shell, "24 80").await;
    shell
        .resize(TtySize {
            cols: 132,
            rows: 43,
        })
        .await
        .unwrap();
    shell.write_all(b"stty size; echo $TERM\r").await.unwrap();
    read_until(&mut shell, "43 132\r\nxterm-256color").await;
    shell.write_all(b"exit 7\r").await.unwrap();
    let outcome = shell.collect(1 << 16).await.unwrap();
    assert_eq!(outcome.exit_code, 7);

    let err = scope
        .rt
        .exec(
            &id,
            ExecSpec::terminal(["sh"], TtySize { cols: 0, rows: 24 }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err:?}");
    let err = scope
        .rt
        .exec(&id, ExecSpec::command(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err:?}");
}

#[tokio::test]
async fn shared_session_shows_one_users_typing_to_the_other() {
    let scope = Scope::new("tmux").await;
    let id = scope.running(&scope.spec("c")).await;
    let mut ann = scope
        .rt
        .exec(&id, ExecSpec::shared_session(SIZE))
        .await
        .unwrap();
    read_until(&mut ann, "[berth]").await; // tmux drew its status line: the session exists
    let mut bob = scope
        .rt
        .exec(
            &id,
            ExecSpec::shared_session(TtySize {
                cols: 100,
                rows: 30,
            }),
        )
        .await
        .unwrap();
    read_until(&mut bob, "[berth]").await;

    // The command line holds `$((6*7))`; only its result, `42zz`, proves the shell ran it.
    ann.write_all(b"echo $((6*7))zz\r").await.unwrap();
    read_until(&mut bob, "42zz").await;
    bob.write_all(b"echo $((7*8))yy\r").await.unwrap();
    read_until(&mut ann, "56yy").await;

    let sessions = [
        "tmux",
        "list-sessions",
        "-F",
        "#{session_name} #{session_attached}",
    ];
    assert_eq!(scope.run(&id, &sessions).await.0, "berth 2\n");

    // Ann closes her tab: her tmux client is hung up, the session and Bob stay.
    drop(ann);
    common::eventually("ann's client to detach", || async {
        scope.run(&id, &sessions).await.0 == "berth 1\n"
    })
    .await;
    bob.write_all(b"echo $((8*9))xx\r").await.unwrap();
    read_until(&mut bob, "72xx").await;
}

#[tokio::test]
async fn dropping_a_terminal_hangs_up_its_shell() {
    let scope = Scope::new("hangup").await;
    let id = scope.running(&scope.spec("c")).await;
    // As another user than the container's root, who (without CAP_KILL) could not signal it.
    let mut spec = ExecSpec::terminal(["/bin/bash", "--norc"], SIZE);
    spec.user = Some("nobody".into());
    let mut shell = scope.rt.exec(&id, spec).await.unwrap();
    shell
        .write_all(b"printf 'pid %s end\\n' $$\r")
        .await
        .unwrap();
    let text = read_until(&mut shell, " end\r\n").await;
    let pid = text
        .split("pid ")
        .find_map(|rest| {
            rest.split_once(" end")
                .and_then(|(n, _)| n.parse::<u32>().ok())
        })
        .unwrap_or_else(|| panic!("no pid in {text:?}"));
    let proc_dir = format!("/proc/{pid}");
    let alive = ["test", "-d", proc_dir.as_str()];
    assert_eq!(
        scope.run(&id, &alive).await.1,
        0,
        "the shell should run before the drop"
    );

    drop(shell);
    common::eventually("the shell to be hung up", || async {
        scope.run(&id, &alive).await.1 != 0
    })
    .await;

    // An explicit hang-up of a finished command is a no-op.
    let done = scope
        .rt
        .exec(&id, ExecSpec::command(["true"]))
        .await
        .unwrap();
    let control = done.control();
    assert_eq!(done.collect(16).await.unwrap().exit_code, 0);
    control.hang_up().await.unwrap();
}

#[tokio::test]
async fn the_login_shell_is_the_templates_when_present_and_sh_otherwise() {
    let scope = Scope::new("shell").await;
    let id = scope.running(&scope.spec("c")).await;
    let size = TtySize { cols: 80, rows: 24 };
    // The shell reports what it is, then exits.
    let which = |shell: &[&str]| {
        let shell: Vec<String> = shell.iter().map(|s| (*s).to_owned()).collect();
        let rt = &scope.rt;
        let id = &id;
        async move {
            let mut spec = ExecSpec::login_shell(&shell, size);
            spec.env.insert("ENV", "/dev/null");
            let pty = rt.exec(id, spec).await.unwrap();
            let (mut output, mut input, control) = pty.into_parts();
            input
                .write_all(b"echo \"shell=$0 args=$-\"; exit\n")
                .await
                .unwrap();
            let mut text = String::new();
            while let Some(chunk) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            }
            assert_eq!(control.wait().await.unwrap(), 0, "{text}");
            text
        }
    };
    let text = which(&["/bin/bash"]).await;
    assert!(
        text.contains("shell=/bin/bash") || text.contains("shell=-bash"),
        "{text}"
    );
    // Arguments reach the shell: bash's -x shows in $-.
    let text = which(&["/bin/bash", "--norc", "-x"]).await;
    assert!(
        text.contains("shell=/bin/bash args=") && text.contains('x'),
        "{text}"
    );
    // A shell the image lacks falls back to sh.
    let text = which(&["/bin/zsh"]).await;
    assert!(
        text.contains("shell=/bin/sh") || text.contains("shell=-sh"),
        "{text}"
    );
}
