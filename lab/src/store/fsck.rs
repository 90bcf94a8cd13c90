//! Refusals before SQLite touches a directory it cannot use safely.
//!
//! SQLite's WAL mode needs shared memory and working POSIX locks, which network
//! filesystems do not reliably give: corruption, not an error, is the usual
//! outcome. A read-only directory cannot hold the `-wal` and `-shm` files.

use std::path::Path;

use anyhow::Result;
use nix::sys::statfs::{FsType, statfs};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::error::LabError;

pub fn check_directory(dir: &Path) -> Result<()> {
    let vfs = statvfs(dir).map_err(|e| LabError::failure(format!("cannot inspect `{}`: {e}", dir.display())))?;
    if vfs.flags().contains(FsFlags::ST_RDONLY) {
        return Err(LabError::refused(format!("`{}` is on a read-only filesystem", dir.display()))
            .hint("the research log needs a writable directory; move the lab root or remount read-write")
            .into());
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(LabError::refused(format!("`{}` is not writable", dir.display()))
            .hint("fix its permissions, or point LAB_ROOT at a writable lab root")
            .into());
    }
    let fs = statfs(dir).map_err(|e| LabError::failure(format!("cannot inspect `{}`: {e}", dir.display())))?;
    if let Some(name) = network_filesystem(fs.filesystem_type()) {
        return Err(LabError::refused(format!(
            "`{}` is on a network filesystem ({name}); SQLite's WAL mode is unsafe there",
            dir.display()
        ))
        .hint("keep the lab root on a local disk; share results with `lab export` instead")
        .into());
    }
    Ok(())
}

/// Network filesystems by their statfs magic numbers (linux/magic.h).
fn network_filesystem(fs: FsType) -> Option<&'static str> {
    // The magic numbers are u32 in the kernel; `f_type` is a signed word here.
    match fs.0 as u32 {
        0x6969 => Some("nfs"),
        0x517B => Some("smb"),
        0xFF53_4D42 => Some("cifs"),
        0xFE53_4D42 => Some("smb2"),
        0x5346_414F => Some("afs"),
        0x0102_1997 => Some("9p"),
        0x0BD0_0BD0 => Some("lustre"),
        0x4750_4653 => Some("gpfs"),
        0x6573_5546 => None, // fuse: local or remote, cannot tell; allowed
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_network_filesystems_are_named() {
        assert_eq!(network_filesystem(FsType(0x6969)), Some("nfs"));
        assert_eq!(network_filesystem(FsType(0xFF53_4D42_u32 as _)), Some("cifs"));
        assert_eq!(network_filesystem(FsType(0xEF53)), None); // ext4
        assert_eq!(network_filesystem(FsType(0x0102_1994)), None); // tmpfs
    }

    #[test]
    fn a_local_temp_directory_is_accepted() {
        check_directory(&std::env::temp_dir()).unwrap();
    }
}
