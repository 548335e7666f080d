//! Inventory scripts are bash, and only bash: each one is checked before a sync may put it in
//! force.
//!
//! A script may start with `#!/bin/bash`, `#!/usr/bin/bash` or `#!/usr/bin/env bash` (options
//! after it are kept, e.g. `#!/bin/bash -eu`), or with no shebang at all; it runs as
//! `bash -s` on the machine either way. Any other interpreter is refused, as is a file
//! `bash -n` rejects (the error names the file and bash's line), a file with NUL bytes, and
//! one larger than [`MAX_SCRIPT_BYTES`].

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The largest script accepted.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// How long `bash -n` may take over one script.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a script is refused: the line when bash gave one, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptProblem {
    pub line: Option<usize>,
    pub message: String,
}

impl ScriptProblem {
    fn whole(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }
}

/// Checks one script's bytes (see the module docs).
pub async fn check_script(bytes: &[u8]) -> Result<(), ScriptProblem> {
    if bytes.len() > MAX_SCRIPT_BYTES {
        return Err(ScriptProblem::whole(format!(
            "{} bytes, more than a script may have ({MAX_SCRIPT_BYTES})",
            bytes.len()
        )));
    }
    if bytes.contains(&0) {
        return Err(ScriptProblem::whole("contains NUL bytes: not a text file"));
    }
    check_shebang(bytes)?;
    let mut child = Command::new("bash")
        .arg("-n")
        .arg("/dev/stdin")
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ScriptProblem::whole(format!("cannot run bash -n: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        });
    }
    let out = match tokio::time::timeout(CHECK_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| ScriptProblem::whole(format!("bash -n: {e}")))?,
        Err(_) => return Err(ScriptProblem::whole("bash -n did not finish")),
    };
    if out.status.success() {
        return Ok(());
    }
    Err(parse_bash_error(&String::from_utf8_lossy(&out.stderr)))
}

/// `#!` lines that mean bash.
fn check_shebang(bytes: &[u8]) -> Result<(), ScriptProblem> {
    let Some(rest) = bytes.strip_prefix(b"#!") else {
        return Ok(());
    };
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..end]);
    let mut words = line.split_whitespace();
    let interpreter = words.next().unwrap_or_default();
    let bash = match interpreter {
        "/bin/bash" | "/usr/bin/bash" | "/usr/local/bin/bash" => true,
        "/usr/bin/env" | "/bin/env" => words.find(|w| !w.starts_with('-')) == Some("bash"),
        _ => false,
    };
    if bash {
        Ok(())
    } else {
        Err(ScriptProblem {
            line: Some(1),
            message: format!(
                "the shebang #!{} is not bash: inventory scripts run with bash -s, so they must be bash scripts (#!/bin/bash or #!/usr/bin/env bash)",
                line.trim()
            ),
        })
    }
}

/// `/dev/stdin: line 3: syntax error: unexpected end of file` into line 3 and the message.
fn parse_bash_error(stderr: &str) -> ScriptProblem {
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bash -n failed");
    let rest = first.strip_prefix("/dev/stdin: ").unwrap_or(first);
    if let Some(after) = rest.strip_prefix("line ")
        && let Some((number, message)) = after.split_once(": ")
        && let Ok(line) = number.parse()
    {
        return ScriptProblem {
            line: Some(line),
            message: format!("bash -n: {message}"),
        };
    }
    ScriptProblem::whole(format!("bash -n: {rest}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn bash_scripts_pass() {
        for ok in [
            "echo hello\n",
            "#!/bin/bash\nset -euo pipefail\nfor i in 1 2; do echo $i; done\n",
            "#!/usr/bin/env bash\n[[ -n $HOME ]] && echo \"$HOME\"\n",
            "#!/bin/bash -eu\necho ok\n",
            "#!/usr/bin/env -S bash -e\necho ok\n",
            "",
        ] {
            check_script(ok.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("{ok:?}: {e:?}"));
        }
        // Non-UTF-8 bytes are bash's business, not ours.
        check_script(b"echo \xff\xfe\n").await.unwrap();
    }

    #[tokio::test]
    async fn other_interpreters_are_refused_on_line_one() {
        for bad in [
            "#!/bin/sh\necho hi\n",
            "#!/usr/bin/env python3\nprint(1)\n",
            "#!/usr/bin/perl\n",
            "#! /bin/zsh\n",
            "#!/usr/bin/env\n",
        ] {
            let problem = check_script(bad.as_bytes()).await.unwrap_err();
            assert_eq!(problem.line, Some(1), "{bad:?}");
            assert!(problem.message.contains("not bash"), "{}", problem.message);
        }
    }

    #[tokio::test]
    async fn syntax_errors_name_bashs_line() {
        let problem = check_script(b"echo one\necho two\nfi\n").await.unwrap_err();
        assert_eq!(problem.line, Some(3));
        assert!(
            problem.message.contains("unexpected token"),
            "{}",
            problem.message
        );
        let problem = check_script(b"if true; then\n  echo x\n")
            .await
            .unwrap_err();
        assert_eq!(problem.line, Some(3));
        assert!(
            problem.message.contains("end of file"),
            "{}",
            problem.message
        );
        // bash -n never runs anything.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch {}\nfi\n", marker.display());
        assert!(check_script(script.as_bytes()).await.is_err());
        let script = format!("touch {}\n", marker.display());
        check_script(script.as_bytes()).await.unwrap();
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn binary_and_huge_files_are_refused() {
        assert!(
            check_script(b"echo\0hi\n")
                .await
                .unwrap_err()
                .message
                .contains("NUL")
        );
        let huge = vec![b'#'; MAX_SCRIPT_BYTES + 1];
        assert!(
            check_script(&huge)
                .await
                .unwrap_err()
                .message
                .contains("more than")
        );
    }

    #[test]
    fn bash_messages() {
        assert_eq!(
            parse_bash_error(
                "/dev/stdin: line 2: syntax error near unexpected token `fi'\n/dev/stdin: line 2: `fi'\n"
            ),
            ScriptProblem {
                line: Some(2),
                message: "bash -n: syntax error near unexpected token `fi'".to_owned()
            }
        );
        assert_eq!(parse_bash_error("weird").line, None);
    }
}
