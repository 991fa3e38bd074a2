//! Loopback addresses for a local cluster: free ports, and a pod CIDR no other local cluster uses.
use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Result, bail};

use super::proc;

/// A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, release it). Never hands out the same port
/// twice in one process, so clusters started side by side in one test binary cannot pick the same one; a collision
/// with another process is still possible and is handled by the caller retrying the component.
pub fn free_port() -> Result<u16> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..100 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 after 100 tries")
}

/// A random number (no rand dependency: the std hasher is randomly keyed per instance).
pub fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

/// Folder of pod-CIDR claims, shared by every local cluster on this machine.
fn claims_dir() -> PathBuf {
    std::env::temp_dir().join("aerospike-operator-cluster-cidrs")
}

/// A claimed pod CIDR `127.<octet>.0.0/16`: every address in it is an address of this machine (the whole of
/// 127.0.0.0/8 is local on Linux), so a simulator can listen on each pod IP. The claim is a file naming the pid
/// that owns it; claims of dead pids are taken over.
#[derive(Debug)]
pub struct CidrClaim {
    pub octet: u8,
    path: PathBuf,
}

impl CidrClaim {
    pub fn acquire(owner_pid: u32) -> Result<CidrClaim> {
        let dir = claims_dir();
        fs::create_dir_all(&dir)?;
        // 127.0.x.x holds 127.0.0.1; avoid the low and high ends other tools like to use.
        let start = random_u64();
        for i in 0..230u64 {
            let octet = (16 + (start.wrapping_add(i) % 230)) as u8;
            let path = dir.join(format!("127.{octet}.claim"));
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    fs::write(&path, owner_pid.to_string())?;
                    return Ok(CidrClaim { octet, path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    // A claim without a pid may be one being written right now: leave it.
                    if let Some(pid) = owner
                        && !proc::pid_alive(pid)
                    {
                        let _ = fs::remove_file(&path);
                        // Retry the same octet once: another process may race us to it, which create_new settles.
                        if fs::OpenOptions::new().write(true).create_new(true).open(&path).is_ok() {
                            fs::write(&path, owner_pid.to_string())?;
                            return Ok(CidrClaim { octet, path });
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        bail!("no free pod CIDR in 127.16.0.0 - 127.245.0.0 (claims in {})", dir.display())
    }

    /// Re-points the claim at another owner (the detached kwok process, which outlives `cluster up`).
    pub fn set_owner(&self, pid: u32) -> Result<()> {
        fs::write(&self.path, pid.to_string())?;
        Ok(())
    }

    pub fn cidr(&self) -> String {
        format!("127.{}.0.0/16", self.octet)
    }

    /// The Service CIDR `127.<octet>.192.0/19` (192.0 to 223.255): ClusterIPs are local addresses too, so a test
    /// can serve a Service-backed webhook (the API server dials ClusterIP:port) from a process bound to the
    /// ClusterIP. kwok hands out pod IPs from the bottom of the /16 and nodes sit at the top (255.x), far from this
    /// range. 8,192 addresses: the bench's 1,000 clusters with the API-server floor need 6,000 NodePort Services.
    pub fn service_cidr(&self) -> String {
        format!("127.{}.192.0/19", self.octet)
    }

    /// The `kubernetes` Service's ClusterIP (first of the Service CIDR), named in the API server's certificate.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(127, self.octet, 192, 1)
    }

    /// The address of fake node `i` (outside the range kwok hands to pods, which starts at the bottom).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, self.octet, 255, (i % 250 + 1) as u8)
    }

    /// Removes the claim file.
    pub fn release(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Releases the claim of `octet` (for `cluster down`, which only has the state file).
    pub fn release_octet(octet: u8) {
        let _ = fs::remove_file(claims_dir().join(format!("127.{octet}.claim")));
    }
}
