//! A scripted HTTP server on loopback: each path answers from a queue of
//! (delay, status, body); the last answer repeats.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Wait before answering.
    pub delay: Duration,
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: String,
}

impl Answer {
    /// An immediate answer.
    pub fn now(status: u16, body: &str) -> Self {
        Answer {
            delay: Duration::ZERO,
            status,
            body: body.into(),
        }
    }
}

type Script = Arc<Mutex<BTreeMap<String, (Vec<Answer>, usize)>>>;

/// The server; it lives as long as the test process.
#[derive(Debug, Clone)]
pub struct Stub {
    addr: SocketAddr,
    script: Script,
}

impl Stub {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let script: Script = Arc::default();
        let s = script.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut out = conn.try_clone().expect("clone");
                    let mut r = BufReader::new(conn);
                    let mut line = String::new();
                    if r.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let answer = {
                        let mut map = s.lock().expect("script");
                        match map.get_mut(&path) {
                            Some((answers, next)) => {
                                let a = answers[(*next).min(answers.len() - 1)].clone();
                                *next += 1;
                                a
                            }
                            None => Answer::now(404, "not scripted"),
                        }
                    };
                    std::thread::sleep(answer.delay);
                    let _ = write!(
                        out,
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        answer.status,
                        answer.body.len(),
                        answer.body
                    );
                });
            }
        });
        Stub { addr, script }
    }

    /// Scripts a path.
    pub fn on(&self, path: &str, answers: Vec<Answer>) {
        self.script
            .lock()
            .expect("script")
            .insert(path.into(), (answers, 0));
    }

    /// How many requests a path got.
    pub fn hits(&self, path: &str) -> usize {
        self.script
            .lock()
            .expect("script")
            .get(path)
            .map_or(0, |(_, n)| *n)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A loopback HTTP receiver that records every request body and answers a fixed status.
#[derive(Debug, Clone)]
pub struct Receiver {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    /// Starts, answering `status`.
    pub fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let status = Arc::new(Mutex::new(status));
        let (b, st) = (bodies.clone(), status.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut out = conn.try_clone().expect("clone");
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = std::io::Read::read_exact(&mut r, &mut body);
                b.lock()
                    .expect("bodies")
                    .push((path, String::from_utf8_lossy(&body).into_owned()));
                let code = *st.lock().expect("status");
                let _ = write!(
                    out,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver {
            addr,
            bodies,
            status,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The bodies received, with their paths.
    pub fn bodies(&self) -> Vec<(String, String)> {
        self.bodies.lock().expect("bodies").clone()
    }

    /// Changes the status answered.
    pub fn answer(&self, status: u16) {
        *self.status.lock().expect("status") = status;
    }
}
