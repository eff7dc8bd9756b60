//! What to run and how, read once at start-up from the function's environment:
//! Lambda's `_HANDLER` and `LAMBDA_TASK_ROOT`, and the runtime's own `OW_*` variables
//! (see docs/runtime.md). `prepare` turns the settings into a ready [`Action`]: the
//! code located (a zip extracted), the kind decided, the launcher written out.

use super::messages::RuntimeFailure;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Node.js launcher, shipped inside the binary.
pub(crate) const NODE_LAUNCHER: &str = include_str!("launchers/launcher.js");
/// The Python launcher, shipped inside the binary.
pub(crate) const PYTHON_LAUNCHER: &str = include_str!("launchers/launcher.py");

pub use owl_whisk::contract::Kind;

/// How action output lines are written to the Lambda log stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `timestamp<TAB>request id<TAB>INFO|ERROR<TAB>line`, the Node.js runtime's format,
    /// which keeps the stream and time of each line (owl reads it back into
    /// OpenWhisk's `stdout` / `stderr` log lines).
    Lambda,
    /// The line as the action wrote it.
    Plain,
}

/// The settings, as read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `AWS_LAMBDA_RUNTIME_API`: `host:port`, possibly with a path prefix.
    pub(crate) runtime_api: String,
    /// `LAMBDA_TASK_ROOT`: the unzipped function package.
    pub(crate) task_root: PathBuf,
    /// `_HANDLER`: the function's handler string.
    pub handler: String,
    /// `OW_ACTION_KIND`.
    pub kind: Option<String>,
    /// `OW_ACTION_CODE`: the action's source file, zip or directory, relative to the
    /// task root (or absolute).
    pub code: Option<String>,
    /// `OW_ACTION_MAIN`: the entry function.
    pub main: Option<String>,
    /// `OW_ACTION_EXEC`: the ActionLoop executable of the generic bridge.
    pub exec: Option<String>,
    /// `OW_NODE`: the Node.js interpreter.
    pub node: String,
    /// `OW_PYTHON`: the Python interpreter.
    pub python: String,
    /// `OW_WAIT_FOR_ACK`: whether a generic executable acknowledges its start.
    pub(crate) wait_for_ack: bool,
    /// `OW_INIT_TIMEOUT_MS`: how long loading the action may take.
    pub(crate) init_timeout: Duration,
    /// `OW_LOG_FORMAT`: `lambda` or `plain`.
    pub log_format: LogFormat,
    /// Where launchers and extracted code go (`$TMPDIR`, else `/tmp`).
    pub(crate) work_dir: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME`, used as the action name of plain events.
    pub function_name: String,
}

impl Settings {
    /// Reads the settings from the process environment.
    pub(crate) fn from_env() -> Result<Settings, RuntimeFailure> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `get` (the environment, or a map in tests).
    pub(crate) fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, RuntimeFailure> {
        let runtime_api = get("AWS_LAMBDA_RUNTIME_API").ok_or_else(|| {
            RuntimeFailure::config("AWS_LAMBDA_RUNTIME_API is not set: the runtime must run inside Lambda (or an emulator)")
        })?;
        let init_timeout = match get("OW_INIT_TIMEOUT_MS") {
            None => Duration::from_secs(10),
            Some(v) => Duration::from_millis(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(
                || {
                    RuntimeFailure::config(format!(
                        "OW_INIT_TIMEOUT_MS must be a positive number of milliseconds, not {v:?}"
                    ))
                },
            )?),
        };
        let log_format = match get("OW_LOG_FORMAT").as_deref() {
            None | Some("lambda") => LogFormat::Lambda,
            Some("plain") => LogFormat::Plain,
            Some(other) => {
                return Err(RuntimeFailure::config(format!(
                    "OW_LOG_FORMAT must be `lambda` or `plain`, not {other:?}"
                )));
            }
        };
        let work_dir = PathBuf::from(get("TMPDIR").unwrap_or_else(|| "/tmp".into()))
            .join(format!("owl-runtime-{}", std::process::id()));
        Ok(Settings {
            runtime_api,
            task_root: get("LAMBDA_TASK_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
            handler: get("_HANDLER").unwrap_or_default(),
            kind: get("OW_ACTION_KIND"),
            code: get("OW_ACTION_CODE"),
            main: get("OW_ACTION_MAIN"),
            exec: get("OW_ACTION_EXEC"),
            node: get("OW_NODE").unwrap_or_else(|| "node".into()),
            python: get("OW_PYTHON").unwrap_or_else(|| "python3".into()),
            wait_for_ack: get("OW_WAIT_FOR_ACK").is_some(),
            init_timeout,
            log_format,
            work_dir,
            function_name: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        })
    }
}

/// A ready action: what to start, where, with which extra environment.
#[derive(Debug, Clone)]
pub struct Action {
    /// The launcher kind.
    pub kind: Kind,
    /// Program and arguments of the launcher process.
    pub command: Vec<OsString>,
    /// Its working directory (the action's code directory).
    pub(crate) cwd: PathBuf,
    /// Extra environment of the launcher.
    pub env: Vec<(String, OsString)>,
    /// Whether the launcher acknowledges its start on fd 3.
    pub(crate) wait_for_ack: bool,
}

/// File names tried, in order, when neither `OW_ACTION_CODE` nor `_HANDLER` names the code.
const DEFAULT_CODE: &[&str] = &[
    "action.zip",
    "index.js",
    "index.mjs",
    "action.js",
    "__main__.py",
    "action.py",
    "main.py",
    "exec",
];

/// Extensions tried for a Lambda-style `module.function` handler.
const HANDLER_EXTENSIONS: &[&str] = &["", ".js", ".mjs", ".cjs", ".py", ".zip"];

/// Locates the code: `(path, main)`.
pub(crate) fn locate_code(s: &Settings) -> Result<(PathBuf, String), RuntimeFailure> {
    let main_override = s.main.clone();
    let found = |p: PathBuf, main: String| (p, main_override.clone().unwrap_or(main));
    if let Some(code) = &s.code {
        let p = s.task_root.join(code);
        return if p.exists() {
            Ok(found(p, "main".into()))
        } else {
            Err(RuntimeFailure::no_handler(format!(
                "OW_ACTION_CODE names {}, which does not exist",
                p.display()
            )))
        };
    }
    let handler = s.handler.trim();
    if !handler.is_empty() && handler != "bootstrap" {
        let whole = s.task_root.join(handler);
        if whole.exists() {
            return Ok(found(whole, "main".into()));
        }
        if let Some((module, func)) = handler.rsplit_once('.')
            && !module.is_empty()
            && !func.is_empty()
        {
            for ext in HANDLER_EXTENSIONS {
                let p = s.task_root.join(format!("{module}{ext}"));
                if p.exists() {
                    return Ok(found(p, func.to_string()));
                }
            }
        }
        return Err(RuntimeFailure::no_handler(format!(
            "the handler {handler:?} names no file in {} (expected `file`, or `module.function` with module.js, .mjs, .cjs, .py or .zip)",
            s.task_root.display()
        )));
    }
    for name in DEFAULT_CODE {
        let p = s.task_root.join(name);
        if p.exists() {
            return Ok(found(p, "main".into()));
        }
    }
    Err(RuntimeFailure::no_handler(format!(
        "no action code in {}: set the handler or OW_ACTION_CODE (tried {})",
        s.task_root.display(),
        DEFAULT_CODE.join(", ")
    )))
}

/// Extracts `zip` into `dest` (entries that would escape it are refused).
pub(crate) fn extract_zip(zip_path: &Path, dest: &Path) -> Result<(), RuntimeFailure> {
    let fail = |what: String| RuntimeFailure::init(format!("{}: {what}", zip_path.display()));
    let file = std::fs::File::open(zip_path).map_err(|e| fail(e.to_string()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| fail(format!("not a zip file: {e}")))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| fail(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(fail(format!(
                "entry {:?} escapes the archive",
                entry.name()
            )));
        };
        let out = dest.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| fail(e.to_string()))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        let mut f = std::fs::File::create(&out).map_err(|e| fail(e.to_string()))?;
        std::io::copy(&mut entry, &mut f).map_err(|e| fail(e.to_string()))?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o777));
        }
    }
    Ok(())
}

/// Guesses the kind of the code at `code` (a file or a directory).
fn infer_kind(code: &Path) -> Option<Kind> {
    if code.is_dir() {
        if code.join("package.json").is_file()
            || code.join("index.js").is_file()
            || code.join("index.mjs").is_file()
        {
            return Some(Kind::Nodejs);
        }
        if code.join("__main__.py").is_file() {
            return Some(Kind::Python);
        }
        if code.join("exec").is_file() || code.join("bin/exec").is_file() {
            return Some(Kind::ActionLoop);
        }
        return None;
    }
    match code.extension().and_then(|e| e.to_str()) {
        Some("js" | "mjs" | "cjs") => Some(Kind::Nodejs),
        Some("py") => Some(Kind::Python),
        _ => Some(Kind::ActionLoop),
    }
}

/// Locates the code, extracts a zip, decides the kind and writes the launcher out.
pub fn prepare(s: &Settings) -> Result<Action, RuntimeFailure> {
    let (mut code, main) = locate_code(s)?;
    std::fs::create_dir_all(&s.work_dir).map_err(|e| {
        RuntimeFailure::init(format!("cannot create {}: {e}", s.work_dir.display()))
    })?;
    if code.extension().is_some_and(|e| e == "zip") {
        let dest = s.work_dir.join("action");
        let _ = std::fs::remove_dir_all(&dest);
        extract_zip(&code, &dest)?;
        code = dest;
    }
    let kind = match &s.kind {
        Some(k) => Kind::parse(k),
        None => infer_kind(&code).ok_or_else(|| {
            RuntimeFailure::init(format!(
                "cannot tell the kind of the action in {}: set OW_ACTION_KIND",
                code.display()
            ))
        })?,
    };
    let cwd = if code.is_dir() {
        code.clone()
    } else {
        code.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let own_env = |code: &Path| {
        vec![
            ("OWL_ACTION_CODE".to_string(), code.as_os_str().to_owned()),
            ("OWL_ACTION_MAIN".to_string(), OsString::from(&main)),
            ("__OW_WAIT_FOR_ACK".to_string(), OsString::from("1")),
        ]
    };
    let write_launcher = |name: &str, text: &str| -> Result<PathBuf, RuntimeFailure> {
        let p = s.work_dir.join(name);
        std::fs::write(&p, text)
            .map_err(|e| RuntimeFailure::init(format!("cannot write {}: {e}", p.display())))?;
        Ok(p)
    };
    let action = match kind {
        Kind::Nodejs => Action {
            kind,
            command: vec![
                OsString::from(&s.node),
                write_launcher("launcher.js", NODE_LAUNCHER)?.into_os_string(),
            ],
            cwd,
            env: own_env(&code),
            wait_for_ack: true,
        },
        Kind::Python => Action {
            kind,
            command: vec![
                OsString::from(&s.python),
                OsString::from("-u"),
                write_launcher("launcher.py", PYTHON_LAUNCHER)?.into_os_string(),
            ],
            cwd,
            env: own_env(&code),
            wait_for_ack: true,
        },
        Kind::ActionLoop => {
            let exec = match &s.exec {
                Some(e) if Path::new(e).is_absolute() => PathBuf::from(e),
                Some(e) => cwd.join(e),
                None if code.is_dir() => [code.join("exec"), code.join("bin/exec")]
                    .into_iter()
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        RuntimeFailure::no_handler(format!(
                            "no ActionLoop executable in {}: set OW_ACTION_EXEC",
                            code.display()
                        ))
                    })?,
                None => code.clone(),
            };
            let mut env = Vec::new();
            if s.wait_for_ack {
                env.push(("__OW_WAIT_FOR_ACK".to_string(), OsString::from("1")));
            }
            Action {
                kind,
                command: vec![exec.into_os_string()],
                cwd,
                env,
                wait_for_ack: s.wait_for_ack,
            }
        }
    };
    Ok(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of `(name, bytes, executable)` entries, as an action's zip is made.
    fn zip_files(files: &[(String, Vec<u8>, bool)]) -> zip::result::ZipResult<Vec<u8>> {
        use std::io::Write;
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut out);
            for (name, data, exec) in files {
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(if *exec { 0o755 } else { 0o644 });
                z.start_file(name.as_str(), opts)?;
                z.write_all(data)?;
            }
            z.finish()?;
        }
        Ok(out.into_inner())
    }
    use std::collections::HashMap;

    fn settings(root: &Path, vars: &[(&str, &str)]) -> Settings {
        let mut m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.insert("AWS_LAMBDA_RUNTIME_API".into(), "127.0.0.1:1".into());
        m.insert("LAMBDA_TASK_ROOT".into(), root.display().to_string());
        m.insert("TMPDIR".into(), root.join("tmp").display().to_string());
        Settings::from_lookup(|k| m.get(k).cloned()).unwrap()
    }

    #[test]
    fn kinds_follow_openwhisk_names() {
        assert_eq!(Kind::parse("nodejs:20"), Kind::Nodejs);
        assert_eq!(Kind::parse("python:3.11"), Kind::Python);
        assert_eq!(Kind::parse("go:1.22"), Kind::ActionLoop);
        assert_eq!(Kind::parse("blackbox"), Kind::ActionLoop);
    }

    #[test]
    fn handler_forms() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("hello.js"), "function main(){}").unwrap();
        std::fs::write(d.path().join("act.py"), "def main(a): return a").unwrap();
        let (p, m) = locate_code(&settings(d.path(), &[("_HANDLER", "hello.js")])).unwrap();
        assert_eq!(
            (p.file_name().unwrap().to_str().unwrap(), m.as_str()),
            ("hello.js", "main")
        );
        let (p, m) = locate_code(&settings(d.path(), &[("_HANDLER", "hello.greet")])).unwrap();
        assert_eq!(
            (p.file_name().unwrap().to_str().unwrap(), m.as_str()),
            ("hello.js", "greet")
        );
        let (p, m) = locate_code(&settings(
            d.path(),
            &[
                ("_HANDLER", "hello.greet"),
                ("OW_ACTION_CODE", "act.py"),
                ("OW_ACTION_MAIN", "run"),
            ],
        ))
        .unwrap();
        assert_eq!(
            (p.file_name().unwrap().to_str().unwrap(), m.as_str()),
            ("act.py", "run")
        );
        let err = locate_code(&settings(d.path(), &[("_HANDLER", "nope.main")])).unwrap_err();
        assert_eq!(err.error_type, "Runtime.NoSuchHandler");
        assert!(err.message.contains("\"nope.main\""), "{}", err.message);
    }

    #[test]
    fn defaults_and_bad_settings() {
        let d = tempfile::tempdir().unwrap();
        let err = locate_code(&settings(d.path(), &[])).unwrap_err();
        assert!(err.message.contains("no action code"), "{}", err.message);
        std::fs::write(d.path().join("__main__.py"), "def main(a): return a").unwrap();
        let s = settings(d.path(), &[("_HANDLER", "bootstrap")]);
        let a = prepare(&s).unwrap();
        assert_eq!(a.kind, Kind::Python);
        assert!(s.work_dir.join("launcher.py").is_file());
        let bad = Settings::from_lookup(|k| match k {
            "AWS_LAMBDA_RUNTIME_API" => Some("x:1".into()),
            "OW_INIT_TIMEOUT_MS" => Some("soon".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(
            bad.message.contains("OW_INIT_TIMEOUT_MS"),
            "{}",
            bad.message
        );
        assert!(Settings::from_lookup(|_| None).is_err());
    }

    #[test]
    fn zips_are_extracted_and_kinds_inferred() {
        let d = tempfile::tempdir().unwrap();
        let zip = zip_files(&[
            (
                "package.json".into(),
                br#"{"main":"lib/a.js"}"#.to_vec(),
                false,
            ),
            (
                "lib/a.js".into(),
                b"exports.main = () => ({})".to_vec(),
                false,
            ),
        ])
        .unwrap();
        std::fs::write(d.path().join("action.zip"), zip).unwrap();
        let s = settings(d.path(), &[]);
        let a = prepare(&s).unwrap();
        assert_eq!(a.kind, Kind::Nodejs);
        assert!(a.cwd.join("lib/a.js").is_file());
        std::fs::write(d.path().join("bad.zip"), b"not a zip").unwrap();
        let err = prepare(&settings(d.path(), &[("_HANDLER", "bad.zip")])).unwrap_err();
        assert!(err.message.contains("not a zip file"), "{}", err.message);
    }
}
