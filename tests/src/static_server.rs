//! A plain HTTP server for a directory (a fleet's mirror), counting the
//! requests and the body bytes it serves. `GET` only; paths with `..` or
//! hidden components answer 404.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the server has served.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Body bytes sent.
    pub bytes: AtomicU64,
    /// Every path asked for, in order.
    pub paths: Mutex<Vec<String>>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct StaticServer {
    addr: SocketAddr,
    /// What it served.
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl StaticServer {
    /// Serves `dir` on `bind` (`127.0.0.1:0`, or a bridge address).
    pub fn start(dir: &Path, bind: &str) -> Self {
        let listener = TcpListener::bind(bind).expect("bind the static server");
        let addr = listener.local_addr().expect("addr");
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, root) = (counters.clone(), stop.clone(), dir.to_owned());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (c, root) = (c.clone(), root.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &root, &c);
                });
            }
        });
        StaticServer {
            addr,
            counters,
            stop,
        }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests and body bytes so far.
    pub fn served(&self) -> (u64, u64) {
        (
            self.counters.requests.load(Ordering::SeqCst),
            self.counters.bytes.load(Ordering::SeqCst),
        )
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.split(['?', '#']).next()?.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with('.')))
    {
        return None;
    }
    Some(root.join(rel)).filter(|p| p.is_file())
}

fn serve(conn: TcpStream, root: &Path, c: &Counters) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut keep_alive = true;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection: close") {
                keep_alive = false;
            }
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        c.requests.fetch_add(1, Ordering::SeqCst);
        c.paths.lock().expect("paths").push(path.clone());
        match resolve(root, &path).and_then(|p| std::fs::read(p).ok()) {
            Some(body) => {
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: \
                     application/octet-stream\r\n\r\n",
                    body.len()
                )?;
                conn.write_all(&body)?;
                c.bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
            }
            None => {
                conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            }
        }
        conn.flush()?;
        if !keep_alive {
            return Ok(());
        }
    }
}
