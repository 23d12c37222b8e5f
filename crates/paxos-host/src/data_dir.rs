//! The data dir: one log file of [`paxos_core::storage`] frames, and a lock file that keeps a
//! second server off it.
//!
//! ```text
//! DIR/
//!   LOCK          held with an exclusive advisory lock while a server runs; holds its pid
//!   paxos.log     a snapshot, then promises, acceptances and decisions, appended and fsync'd
//!   paxos.log.new the next paxos.log while a compaction writes it; gone once renamed
//! ```
//!
//! Opening it replays the log into the state a [`paxos_core::Node`] restarts from, and cuts off
//! a frame torn by a crash mid-write. Each [`DataDir::persist`] that appends is one `write` and
//! one `fdatasync`, whatever the number of records, which is what lets a batch of client
//! commands share one fsync. One that compacts writes the new file beside the old one and renames
//! it over, so that a crash at any point leaves a whole log: the old or the new.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paxos_core::storage::{self, Durable, Record, ReplayError};

/// The name of the log file inside the data dir.
pub const LOG_FILE: &str = "paxos.log";
/// The name of the file a compaction writes before renaming it to [`LOG_FILE`].
pub const NEW_LOG_FILE: &str = "paxos.log.new";
/// The name of the lock file inside the data dir.
pub const LOCK_FILE: &str = "LOCK";

/// An open, locked data dir.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    log: File,
    /// Held for its lock, which the OS releases when the process exits, even on `kill -9`.
    _lock: File,
    len: u64,
}

/// What opening the data dir found.
#[derive(Debug)]
pub struct Opened {
    pub data_dir: DataDir,
    /// The state to restart the node from.
    pub durable: Durable,
    /// Bytes of a torn last frame that were cut off (0 after a clean stop).
    pub torn_bytes: u64,
}

/// Why a data dir cannot be used. Every one is a run-time failure (exit status 1).
#[derive(Debug)]
pub enum DataDirError {
    /// Another process holds the lock.
    InUse { dir: PathBuf },
    /// A file operation failed.
    Io {
        dir: PathBuf,
        action: &'static str,
        error: io::Error,
    },
    /// The log cannot be trusted: a damaged frame with intact frames after it, which no crash
    /// produces, or a ballot past the highest round a member takes.
    Unreplayable { log: PathBuf, error: ReplayError },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDirError::InUse { dir } => {
                write!(f, "data dir {} is in use by another process", dir.display())
            }
            DataDirError::Io { dir, action, error } => {
                write!(f, "data dir {}: could not {action}: {error}", dir.display())
            }
            DataDirError::Unreplayable {
                log,
                error: ReplayError::Corrupt(corruption),
            } => write!(
                f,
                "{}: {corruption}; refusing to start from a log with a hole in it",
                log.display()
            ),
            DataDirError::Unreplayable { log, error } => {
                write!(f, "{}: {error}; refusing to start", log.display())
            }
        }
    }
}

impl std::error::Error for DataDirError {}

impl DataDir {
    /// Creates the dir if needed, locks it, and replays its log.
    pub fn open(dir: &Path) -> Result<Opened, DataDirError> {
        let io_error = |action: &'static str| {
            move |error: io::Error| DataDirError::Io {
                dir: dir.to_owned(),
                action,
                error,
            }
        };
        std::fs::create_dir_all(dir).map_err(io_error("create it"))?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error("open its lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(DataDirError::InUse {
                    dir: dir.to_owned(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error("lock its lock file")(error)),
        }
        // The pid is only for people wondering who holds the lock; the lock itself is what counts.
        lock.set_len(0).map_err(io_error("write its lock file"))?;
        writeln!(lock, "{}", std::process::id()).map_err(io_error("write its lock file"))?;

        // A compaction that crashed before its rename left a file that was never the log.
        match std::fs::remove_file(dir.join(NEW_LOG_FILE)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(io_error("remove an unfinished compaction")(error));
            }
            _ => {}
        }
        let log_path = dir.join(LOG_FILE);
        let created = !log_path.exists();
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io_error("open its log"))?;
        if created {
            // A new file's directory entry is durable only once the directory is fsync'd.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error("fsync the directory"))?;
        }
        let mut bytes = Vec::new();
        log.seek(SeekFrom::Start(0))
            .and_then(|_| log.read_to_end(&mut bytes))
            .map_err(io_error("read its log"))?;
        let replayed = storage::replay(&bytes).map_err(|error| DataDirError::Unreplayable {
            log: log_path.clone(),
            error,
        })?;
        let torn_bytes = bytes.len() as u64 - replayed.valid_len;
        if torn_bytes > 0 {
            // Appending after a torn frame would bury it in the middle, where replay refuses it.
            log.set_len(replayed.valid_len)
                .and_then(|()| log.sync_all())
                .map_err(io_error("cut the torn end off its log"))?;
        }
        Ok(Opened {
            data_dir: DataDir {
                path: dir.to_owned(),
                log,
                _lock: lock,
                len: replayed.valid_len,
            },
            durable: replayed.state,
            torn_bytes,
        })
    }

    /// Makes a `Ready`'s records durable: appends them, or, when `rewrite` is set, makes them
    /// the whole log. Returns how long the fsyncs took. Does nothing for an empty batch.
    ///
    /// An error here means the server can no longer promise durability, so the caller must stop:
    /// after a failed fsync the kernel may have dropped the dirty pages, and retrying could
    /// report success for data that never reached the disk.
    pub fn persist(&mut self, records: &[Record], rewrite: bool) -> io::Result<Duration> {
        if records.is_empty() {
            return Ok(Duration::ZERO);
        }
        let frames = storage::encode_all(records);
        if rewrite {
            self.replace(&frames)
        } else {
            self.log.write_all(&frames)?;
            let start = Instant::now();
            self.log.sync_data()?;
            self.len += frames.len() as u64;
            Ok(start.elapsed())
        }
    }

    /// Replaces the log by `frames`: writes them to a new file, fsyncs it, renames it over the
    /// log and fsyncs the directory, so the rename itself survives a power cut.
    fn replace(&mut self, frames: &[u8]) -> io::Result<Duration> {
        let new_path = self.path.join(NEW_LOG_FILE);
        let log_path = self.path.join(LOG_FILE);
        let mut new = File::create(&new_path)?;
        new.write_all(frames)?;
        let start = Instant::now();
        new.sync_all()?;
        std::fs::rename(&new_path, &log_path)?;
        File::open(&self.path)?.sync_all()?;
        let took = start.elapsed();
        self.log = OpenOptions::new().append(true).open(&log_path)?;
        self.len = frames.len() as u64;
        Ok(took)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's length in bytes.
    pub fn log_len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Ballot, LogValue, Snapshot};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("paxos-host-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ballot(round: u64) -> Ballot {
        Ballot { round, member: 0 }
    }

    #[test]
    fn appends_replays_and_locks() {
        let dir = temp_dir("replay");
        let mut opened = DataDir::open(&dir).unwrap();
        assert_eq!(opened.durable, Durable::default());
        let decide = Record::Decided {
            slot: 1,
            value: LogValue::Noop,
        };
        opened
            .data_dir
            .persist(&[Record::Promise { ballot: ballot(3) }, decide], false)
            .unwrap();
        let again = DataDir::open(&dir).unwrap_err();
        assert!(
            again.to_string().contains("is in use by another process"),
            "{again}"
        );
        drop(opened);
        let reopened = DataDir::open(&dir).unwrap();
        assert_eq!(reopened.durable.promised, ballot(3));
        assert_eq!(reopened.durable.decided.len(), 1);
        assert_eq!(reopened.torn_bytes, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cuts_a_torn_tail_and_refuses_a_hole() {
        let dir = temp_dir("torn");
        let mut opened = DataDir::open(&dir).unwrap();
        let records: Vec<Record> = (1..=3)
            .map(|r| Record::Promise { ballot: ballot(r) })
            .collect();
        opened.data_dir.persist(&records, false).unwrap();
        let whole = opened.data_dir.log_len();
        drop(opened);
        let log = dir.join(LOG_FILE);
        let file = OpenOptions::new().write(true).open(&log).unwrap();
        file.set_len(whole - 3).unwrap();
        let opened = DataDir::open(&dir).unwrap();
        assert_eq!(opened.durable.promised, ballot(2));
        assert!(opened.torn_bytes > 0);
        assert_eq!(
            std::fs::metadata(&log).unwrap().len(),
            opened.data_dir.log_len()
        );
        drop(opened);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&log, bytes).unwrap();
        let error = DataDir::open(&dir).unwrap_err().to_string();
        assert!(
            error.contains("paxos.log: corrupt record at byte offset 0"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rewrite_replaces_the_log_and_appends_go_on_after_it() {
        let dir = temp_dir("rewrite");
        let mut opened = DataDir::open(&dir).unwrap();
        let promises: Vec<Record> = (1..=100)
            .map(|r| Record::Promise { ballot: ballot(r) })
            .collect();
        opened.data_dir.persist(&promises, false).unwrap();
        let before = opened.data_dir.log_len();
        let snapshot = Record::Snapshot {
            snapshot: Box::new(Snapshot {
                slot: 7,
                ..Snapshot::default()
            }),
        };
        let compacted = [
            Record::Promise {
                ballot: ballot(100),
            },
            snapshot,
        ];
        opened.data_dir.persist(&compacted, true).unwrap();
        assert!(opened.data_dir.log_len() < before);
        let decide = Record::Decided {
            slot: 8,
            value: LogValue::Noop,
        };
        opened.data_dir.persist(&[decide], false).unwrap();
        let len = opened.data_dir.log_len();
        drop(opened);
        // A compaction that crashed before its rename leaves a stray file; it is not the log.
        std::fs::write(dir.join(NEW_LOG_FILE), b"half a compaction").unwrap();
        let reopened = DataDir::open(&dir).unwrap();
        assert_eq!(reopened.durable.promised, ballot(100));
        assert_eq!(reopened.durable.snapshot.as_ref().map(|s| s.slot), Some(7));
        assert_eq!(reopened.durable.decided.len(), 1);
        assert_eq!(reopened.torn_bytes, 0);
        assert_eq!(std::fs::metadata(dir.join(LOG_FILE)).unwrap().len(), len);
        assert!(!dir.join(NEW_LOG_FILE).exists());
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
