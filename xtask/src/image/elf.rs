//! Is an executable statically linked? A dynamically linked ELF names its loader in a PT_INTERP program header;
//! a static (or static-pie) one has none, so it runs in an image without a C library.
use anyhow::{Result, bail};

const PT_INTERP: u32 = 3;

/// Ok when `data` is an ELF executable without an interpreter; an error saying why not otherwise.
pub fn check_static(data: &[u8], what: &str) -> Result<()> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        bail!("{what}: not an ELF executable");
    }
    let is64 = match data[4] {
        1 => false,
        2 => true,
        c => bail!("{what}: unknown ELF class {c}"),
    };
    let le = match data[5] {
        1 => true,
        2 => false,
        d => bail!("{what}: unknown ELF data encoding {d}"),
    };
    let get = |off: usize, n: usize| -> Result<u64> {
        let b = off
            .checked_add(n)
            .and_then(|end| data.get(off..end))
            .ok_or_else(|| anyhow::anyhow!("{what}: truncated ELF header"))?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { b[n - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (get(0x20, 8)? as usize, get(0x36, 2)? as usize, get(0x38, 2)? as usize)
    } else {
        (get(0x1c, 4)? as usize, get(0x2a, 2)? as usize, get(0x2c, 2)? as usize)
    };
    for i in 0..phnum {
        let at = i.checked_mul(phentsize).and_then(|o| o.checked_add(phoff));
        let at = at.ok_or_else(|| anyhow::anyhow!("{what}: corrupt ELF program header table"))?;
        if get(at, 4)? as u32 == PT_INTERP {
            bail!(
                "{what} is dynamically linked (it has an ELF interpreter), so it cannot run in a FROM scratch image; \
                 build it statically (Rust: RUSTFLAGS=\"-C target-feature=+crt-static\" with --target; Go: CGO_ENABLED=0)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_judged_by_its_interpreter() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are built without crt-static here, so they are dynamic.
        assert!(check_static(&me, "test").unwrap_err().to_string().contains("dynamically linked"));
        assert!(check_static(b"#!/bin/sh\n", "script").is_err());
    }
}
