//! A strict asciicast v2 parser (https://docs.asciinema.org/manual/asciicast/v2/): what a
//! recording must be for `asciinema play` and the web player to accept it. Stricter than
//! both: no blank lines, no unknown header keys, a newline at the end.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: f64,
    pub code: String,
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct Cast {
    pub header: serde_json::Map<String, Value>,
    pub events: Vec<Event>,
}

impl Cast {
    /// The text of all output events, in order.
    pub fn output(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.code == "o")
            .map(|e| e.data.as_str())
            .collect()
    }

    pub fn markers(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.code == "m")
            .map(|e| e.data.as_str())
            .collect()
    }
}

const HEADER_KEYS: [&str; 10] = [
    "version",
    "width",
    "height",
    "timestamp",
    "duration",
    "idle_time_limit",
    "command",
    "title",
    "env",
    "theme",
];

fn positive_int(header: &serde_json::Map<String, Value>, key: &str) -> Result<u64, String> {
    header
        .get(key)
        .and_then(Value::as_u64)
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("header {key} must be a positive integer"))
}

/// Parses `bytes` or says which line is wrong and why.
pub fn parse(bytes: &[u8]) -> Result<Cast, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if !text.ends_with('\n') {
        return Err("the file does not end with a newline".into());
    }
    let mut lines = text[..text.len() - 1].split('\n');
    let first = lines.next().ok_or("empty file")?;
    let header: serde_json::Map<String, Value> = serde_json::from_str(first)
        .map_err(|e| format!("line 1: the header is not a JSON object: {e}"))?;
    if header.get("version") != Some(&Value::from(2)) {
        return Err("line 1: version must be 2".into());
    }
    positive_int(&header, "width")?;
    positive_int(&header, "height")?;
    if let Some(key) = header.keys().find(|k| !HEADER_KEYS.contains(&k.as_str())) {
        return Err(format!("line 1: unknown header key {key:?}"));
    }
    if let Some(ts) = header.get("timestamp")
        && !ts.is_i64()
    {
        return Err("line 1: timestamp must be an integer".into());
    }
    if let Some(env) = header.get("env") {
        let ok = env
            .as_object()
            .is_some_and(|env| env.values().all(Value::is_string));
        if !ok {
            return Err("line 1: env must be an object of strings".into());
        }
    }
    if let Some(title) = header.get("title")
        && !title.is_string()
    {
        return Err("line 1: title must be a string".into());
    }
    let mut events = Vec::new();
    let mut previous = 0.0;
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
        let array = value
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| format!("line {n}: an event is [time, code, data]"))?;
        let time = array[0]
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("line {n}: time must be a number >= 0"))?;
        if time < previous {
            return Err(format!("line {n}: time {time} is before {previous}"));
        }
        previous = time;
        let code = array[1]
            .as_str()
            .filter(|c| ["o", "i", "r", "m"].contains(c))
            .ok_or_else(|| format!("line {n}: code must be o, i, r or m"))?;
        let data = array[2]
            .as_str()
            .ok_or_else(|| format!("line {n}: data must be a string"))?;
        if code == "r" {
            let ok = data.split_once('x').is_some_and(|(c, r)| {
                [c, r]
                    .iter()
                    .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            });
            if !ok {
                return Err(format!("line {n}: resize data {data:?} is not COLSxROWS"));
            }
        }
        events.push(Event {
            time,
            code: code.to_owned(),
            data: data.to_owned(),
        });
    }
    Ok(Cast { header, events })
}

/// What `asciinema cat FILE` prints: the real asciinema (Debian's package) reading the file.
/// It insists on a terminal, so it runs under `script`, which gives it a pseudo-terminal in raw
/// mode (no output processing: bytes pass unchanged).
pub fn asciinema_cat(path: &std::path::Path) -> Vec<u8> {
    let missing = "asciinema is not installed: `apt-get install -y asciinema` (the test setup \
                   installs it; run the tests through `make test`)";
    match std::process::Command::new("asciinema")
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => {}
        _ => panic!("{missing}"),
    }
    let command = format!("asciinema cat '{}'", path.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`script` (util-linux) runs asciinema in a pseudo-terminal");
    assert!(
        out.status.success(),
        "asciinema cat {} failed: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
