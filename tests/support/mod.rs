//! Starts the real `klaxon serve` binary on a free loopback port and waits until `/health` answers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A running server process; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Scratch directory (data dir, config, logs).
    pub dir: PathBuf,
    /// Every stdout line so far.
    pub logs: Arc<Mutex<Vec<String>>>,
}

/// A fresh scratch directory.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "klaxon-server-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Server {
    /// Starts with default flags.
    pub async fn start() -> Server {
        Server::start_with(&[], None).await
    }

    /// Starts with extra flags and, optionally, a config file with `config_yaml`.
    pub async fn start_with(extra: &[&str], config_yaml: Option<&str>) -> Server {
        Server::start_in(scratch_dir(), extra, config_yaml).await
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "klaxon did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Copies of the stdout lines logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Restarts on the same data directory, for durability tests (added with the WAL).
impl Server {
    /// Starts on an existing scratch directory `dir` (its `data` dir survives from an earlier server).
    pub async fn start_in(dir: PathBuf, extra: &[&str], config_yaml: Option<&str>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_klaxon"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--rules")
            .arg(dir.join("rules"))
            .arg("--log-format")
            .arg("json")
            .env("LOG_LEVEL", "info")
            .env_remove("LOG_DIR")
            .env_remove("METRICS_PORT")
            .env_remove("KLAXON_WAL_FSYNC")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(yaml) = config_yaml {
            let p = dir.join("klaxon.yml");
            std::fs::write(&p, yaml).unwrap();
            cmd.arg("--config").arg(p);
        }
        let mut child = cmd.spawn().expect("spawn klaxon");
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let logs2 = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("klaxon listening")
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(addr) = v["metadata"]["listen_addr"].as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("klaxon did not log its listen address");
            }
        };
        let server = Server {
            child,
            base: format!("http://{addr}"),
            dir,
            logs,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(server.url("/health")).await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "/health never answered 200");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// Sends SIGKILL and waits for the exit: no shutdown code runs (a crash).
    pub fn kill9(&mut self) -> ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// Stops this server (SIGKILL if `crash`, else SIGTERM) and starts a new one with `extra` flags on the
    /// same scratch directory, so `--data-dir` carries over.
    pub async fn restart(mut self, crash: bool, extra: &[&str]) -> Server {
        if crash {
            self.kill9();
        } else {
            assert!(self.terminate().success());
        }
        // Hand the directory to the new server; this one's drop removes an empty placeholder instead.
        let dir = std::mem::replace(&mut self.dir, scratch_dir());
        drop(self);
        Server::start_in(dir, extra, None).await
    }
}

/// Restarts keeping the delivery config, for durable-state tests (added with durable state).
impl Server {
    /// Stops this server (SIGKILL if `crash`, else SIGTERM) and starts a new one on the same
    /// scratch directory with `extra` flags and, when given, a rewritten config file.
    pub async fn restart_with(
        mut self,
        crash: bool,
        extra: &[&str],
        config_yaml: Option<&str>,
    ) -> Server {
        if crash {
            self.kill9();
        } else {
            assert!(self.terminate().success());
        }
        let dir = std::mem::replace(&mut self.dir, scratch_dir());
        drop(self);
        Server::start_in(dir, extra, config_yaml).await
    }
}
