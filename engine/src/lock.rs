//! The data directory's write lock: `LOCK`, held with an OS file lock for
//! the life of the store and holding the owner's pid, so a second writer
//! gets "locked by pid N" instead of corrupting the store.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::LOCK_FILE;

/// Attempts (10 ms apart) before a held lock is reported.
const LOCK_RETRIES: u32 = 50;

/// Held for the store's lifetime; the OS releases it when the process dies,
/// so a crashed writer never leaves a stale lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| Error::io("open", &path, e))?;
        // A lock that looks held may be a copy of a just-closed descriptor
        // inherited by a child this process is forking (held until the
        // child's exec closes it): retry briefly before calling it taken.
        let mut attempt = 0;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if attempt < LOCK_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(Error::Locked { dir: dir.to_path_buf(), pid: if pid.is_empty() { "unknown".into() } else { pid.to_string() } });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let write_pid = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, "{}", std::process::id())?;
            f.sync_data()
        };
        write_pid(&mut file).map_err(|e| Error::io("write", &path, e))?;
        Ok(Self { _file: file })
    }
}
