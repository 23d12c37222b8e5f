//! The reference row: a 3-member etcd on loopback, when an `etcd` binary is on the PATH
//! (Debian's `etcd-server` package), measured with the same load generator through etcd's JSON
//! gateway, so the report shows where a production system stands on the same machine.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paxos_tests::ports::free_port;
use paxos_tests::tempdir::TempDir;

use crate::http::Conn;

/// A running 3-member etcd cluster, killed on drop.
#[derive(Debug)]
pub struct Etcd {
    pub clients: Vec<String>,
    children: Vec<Child>,
    // Dropped after the children: their data dirs live here.
    _dir: TempDir,
}

impl Etcd {
    /// Starts the cluster, or `Ok(None)` when there is no `etcd` to start.
    pub fn start() -> Result<Option<Etcd>, String> {
        if Command::new("etcd").arg("--version").output().is_err() {
            return Ok(None);
        }
        let dir = TempDir::new("etcd");
        let members: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = members
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut etcd = Etcd {
            clients: members
                .iter()
                .map(|(c, _)| format!("127.0.0.1:{c}"))
                .collect(),
            children: Vec::new(),
            _dir: dir,
        };
        for (i, (client, peer)) in members.iter().enumerate() {
            let child = start_member(etcd._dir.path(), i, *client, *peer, &initial.join(","))?;
            etcd.children.push(child);
        }
        etcd.wait_ready()?;
        Ok(Some(etcd))
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Polls until a write commits, for at most 30 s.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = br#"{"key":"cmVhZHk=","value":"MQ=="}"#;
        while Instant::now() < deadline {
            let answered = Conn::connect(&self.clients[0], Duration::from_secs(1))
                .and_then(|mut c| c.request("POST", "/v3/kv/put", body));
            if matches!(answered, Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the reference etcd cluster did not commit a write within 30 s".into())
    }
}

fn start_member(
    dir: &Path,
    i: usize,
    client: u16,
    peer: u16,
    initial: &str,
) -> Result<Child, String> {
    let log = File::create(dir.join(format!("m{i}.log"))).map_err(|e| e.to_string())?;
    Command::new("etcd")
        .args(["--name", &format!("m{i}")])
        .arg("--data-dir")
        .arg(dir.join(format!("m{i}")))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args([
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            "new",
        ])
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start etcd: {e}"))
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Standard base64, which the gateway wants for keys and values.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn encodes_like_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
