//! The image's partition table and its partitions as files, pure where it can be: the
//! MBR (Raspberry Pi OS images are MBR: p1 the FAT boot partition, p2 the ext4 root)
//! and [`Part`], one partition of an image file as a bounded `Read + Write + Seek`, so
//! the FAT writer and the ext4 reader see only their own bytes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub const SECTOR: u64 = 512;

/// One MBR partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as `/dev/sdX1`.
    pub number: u8,
    pub kind: u8,
    pub start: u64,
    pub len: u64,
}

impl Partition {
    /// FAT12/16/32 partition types (pi-gen uses 0x0c, FAT32 LBA).
    pub fn is_fat(&self) -> bool {
        matches!(self.kind, 0x01 | 0x04 | 0x06 | 0x0b | 0x0c | 0x0e)
    }
}

/// The disk's MBR: its identifier (`PARTUUID=<id>-02`) and used partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    pub disk_id: u32,
    pub partitions: Vec<Partition>,
}

/// Reads the MBR from the first sector.
pub fn parse_mbr(sector: &[u8]) -> Result<Mbr, String> {
    if sector.len() < 512 || sector[510..512] != [0x55, 0xaa] {
        return Err("no MBR partition table (a Raspberry Pi OS image starts with one)".into());
    }
    let mut partitions = Vec::new();
    for i in 0..4u8 {
        let e = &sector[446 + usize::from(i) * 16..][..16];
        let kind = e[4];
        let le = |o: usize| u64::from(u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]));
        if kind == 0 {
            continue;
        }
        if kind == 0xee {
            return Err("a GPT disk: Raspberry Pi OS images are MBR".into());
        }
        partitions.push(Partition { number: i + 1, kind, start: le(8) * SECTOR, len: le(12) * SECTOR });
    }
    let disk_id = u32::from_le_bytes([sector[440], sector[441], sector[442], sector[443]]);
    Ok(Mbr { disk_id, partitions })
}

/// A partition of an open image (or device), bounded to its bytes.
#[derive(Debug)]
pub struct Part {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Part {
    pub fn new(file: File, p: &Partition) -> Part {
        Part { file, start: p.start, len: p.len, pos: 0 }
    }

    fn room(&self, want: usize) -> usize {
        want.min(usize::try_from(self.len.saturating_sub(self.pos)).unwrap_or(usize::MAX))
    }
}

impl Read for Part {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Part {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write past the end of the partition"));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.write(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Part {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek outside the partition")),
        }
    }
}

/// ext4-view reads the root partition through this.
impl ext4_view::Ext4Read for Part {
    fn read(&mut self, start: u64, dst: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        if start.checked_add(dst.len() as u64).is_none_or(|end| end > self.len) {
            return Err("read outside the partition".into());
        }
        self.file.seek(SeekFrom::Start(self.start + start))?;
        self.file.read_exact(dst)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[440..444].copy_from_slice(&0x6c9a_1d2eu32.to_le_bytes());
        for (i, (kind, start, len)) in entries.iter().enumerate() {
            let e = &mut s[446 + i * 16..][..16];
            e[4] = *kind;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    #[test]
    fn pi_os_layout() {
        let m = parse_mbr(&mbr(&[(0x0c, 16384, 1048576), (0x83, 1064960, 262144)])).unwrap();
        assert_eq!(m.disk_id, 0x6c9a_1d2e);
        assert_eq!(m.partitions.len(), 2);
        assert!(m.partitions[0].is_fat() && !m.partitions[1].is_fat());
        assert_eq!((m.partitions[0].start, m.partitions[0].len), (8 << 20, 512 << 20));
        assert_eq!(m.partitions[1].number, 2);
    }

    #[test]
    fn not_an_mbr() {
        assert!(parse_mbr(&[0u8; 512]).unwrap_err().contains("no MBR"));
        assert!(parse_mbr(&mbr(&[(0xee, 1, 100)])).unwrap_err().contains("GPT"));
        assert!(parse_mbr(&[0u8; 10]).is_err());
    }

    #[test]
    fn a_partition_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut p = Part::new(f, &Partition { number: 1, kind: 0x0c, start: 1024, len: 1024 });
        p.seek(SeekFrom::Start(1000)).unwrap();
        assert_eq!(p.write(&[1u8; 100]).unwrap(), 24, "stops at the end");
        assert!(p.write(&[1u8; 1]).is_err());
        assert!(p.seek(SeekFrom::Start(2000)).is_err());
        let all = std::fs::read(&path).unwrap();
        assert_eq!((all[2023], all[2024], all[2047], all[2048]), (7, 1, 1, 7), "{:?}", &all[2020..2050]);
        let mut buf = [0u8; 16];
        assert!(ext4_view::Ext4Read::read(&mut p, 1020, &mut buf).is_err());
    }
}
