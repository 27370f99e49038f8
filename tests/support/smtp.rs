//! A loopback SMTP sink for delivery tests: speaks enough ESMTP for lettre (EHLO with
//! `AUTH PLAIN LOGIN`, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS), captures every
//! accepted message (envelope and raw data), and can answer scripted failure codes.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (dot-unstuffed, CRLF line ends).
    pub data: String,
    /// Decoded `AUTH` credentials (`user:password`), when the client authenticated.
    pub auth: Option<String>,
}

/// Scripted replies: the first entries of each queue are answered instead of 250.
#[derive(Debug, Default, Clone)]
pub struct Script {
    /// Codes for the next `RCPT TO` commands (e.g. `[451]`: the first RCPT fails transiently).
    pub rcpt: VecDeque<u16>,
    /// Codes for the next end-of-data replies.
    pub data: VecDeque<u16>,
    /// Answer every `RCPT TO` with this code (permanent failure tests).
    pub always_rcpt: Option<u16>,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    /// Listening address.
    pub addr: SocketAddr,
    mails: mpsc::UnboundedReceiver<Mail>,
    /// Every command line received, across connections.
    pub commands: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts on 127.0.0.1 with `script`.
    pub async fn start(script: Script) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(script));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let cmds = commands.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (tx, script, cmds) = (tx.clone(), script.clone(), cmds.clone());
                tokio::spawn(async move {
                    let _ = session(sock, tx, script, cmds).await;
                });
            }
        });
        SmtpSink {
            addr,
            mails: rx,
            commands,
            task,
        }
    }

    /// The next accepted message, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Mail> {
        tokio::time::timeout(timeout, self.mails.recv())
            .await
            .ok()
            .flatten()
    }

    /// A message if one is already there.
    pub fn try_next(&mut self) -> Option<Mail> {
        self.mails.try_recv().ok()
    }

    /// How many commands starting with `verb` were received.
    pub fn count(&self, verb: &str) -> usize {
        self.commands
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.to_ascii_uppercase().starts_with(verb))
            .count()
    }
}

fn b64_decode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn addr_of(arg: &str) -> String {
    let a = arg.split_once(':').map_or(arg, |(_, r)| r).trim();
    let a = a.split_whitespace().next().unwrap_or("");
    a.trim_start_matches('<').trim_end_matches('>').to_string()
}

async fn session(
    sock: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<Mail>,
    script: Arc<Mutex<Script>>,
    cmds: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut auth: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        cmds.lock().unwrap().push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n".into()
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd[10..].trim().to_string();
            let arg = if arg.is_empty() {
                w.write_all(b"334 \r\n").await?;
                line.clear();
                r.read_line(&mut line).await?;
                line.trim().to_string()
            } else {
                arg
            };
            let raw = b64_decode(&arg);
            let mut parts = raw.split('\0').skip(1);
            auth = Some(format!(
                "{}:{}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            ));
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            line.clear();
            r.read_line(&mut line).await?;
            let user = b64_decode(&line);
            w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            line.clear();
            r.read_line(&mut line).await?;
            auth = Some(format!("{user}:{}", b64_decode(&line)));
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("MAIL FROM") {
            from = addr_of(&cmd);
            to.clear();
            "250 2.1.0 OK\r\n".into()
        } else if upper.starts_with("RCPT TO") {
            let code = {
                let mut s = script.lock().unwrap();
                s.always_rcpt.or_else(|| s.rcpt.pop_front())
            };
            match code {
                Some(c) => format!("{c} scripted failure for RCPT\r\n"),
                None => {
                    to.push(addr_of(&cmd));
                    "250 2.1.5 OK\r\n".into()
                }
            }
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(l);
            }
            let code = script.lock().unwrap().data.pop_front();
            match code {
                Some(c) => format!("{c} scripted failure for DATA\r\n"),
                None => {
                    let _ = tx.send(Mail {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        data,
                        auth: auth.clone(),
                    });
                    "250 2.0.0 queued\r\n".into()
                }
            }
        } else if upper.starts_with("RSET") {
            to.clear();
            "250 2.0.0 OK\r\n".into()
        } else if upper.starts_with("NOOP") {
            "250 2.0.0 OK\r\n".into()
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 command not recognized\r\n".into()
        };
        w.write_all(reply.as_bytes()).await?;
    }
}
