//! Merkle tiles on disk, in the C2SP tlog-tiles shape: `tiles/tile/<L>/<N>`
//! for a full tile of 256 hashes at tile level L, `tiles/tile/<L>/<N>.p/<W>`
//! for a partial one of W hashes. Only tile levels >= 1 are stored (level 0
//! would be the leaf hashes, 32 B/event, which are recomputed from records).
//! Tiles are written at seal, before the manifest swap, so the tiles of
//! every sealed tree size are on disk once its manifest is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::merkle::{Hash, TILE_HEIGHT, TILE_WIDTH};

/// The C2SP encoding of a tile index: 3-digit groups, all but the last
/// prefixed with `x` (1234067 -> `x001/x234/067`).
pub fn tile_index_path(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Path of a tile under the tiles directory.
pub fn tile_path(root: &Path, level: u32, index: u64, width: u64) -> PathBuf {
    let mut p = root.join("tile").join(level.to_string()).join(tile_index_path(index));
    if width < TILE_WIDTH {
        let name = format!("{}.p", p.file_name().and_then(|n| n.to_str()).unwrap_or_default());
        p.set_file_name(name);
        p = p.join(width.to_string());
    }
    p
}

/// Appends tile-level nodes (level, index, hash), as produced by
/// `Frontier::push`, to the tiles on disk, reading the partial tile each
/// continues. Returns the superseded partial tiles, to delete once the
/// manifest that no longer needs them is durable.
pub fn write_nodes(fs: &dyn FileSystem, root: &Path, nodes: &[(u32, u64, Hash)]) -> Result<Vec<PathBuf>> {
    // (tile level, tile index) -> (first node position in the tile, hashes)
    let mut tiles: BTreeMap<(u32, u64), (u64, Vec<Hash>)> = BTreeMap::new();
    for &(level, index, hash) in nodes {
        let tile_level = level / TILE_HEIGHT;
        let t = tiles.entry((tile_level, index / TILE_WIDTH)).or_insert((index % TILE_WIDTH, Vec::new()));
        t.1.push(hash);
    }
    let mut superseded = Vec::new();
    let mut dirs = Vec::new();
    for ((level, index), (start, new)) in tiles {
        let mut hashes = Vec::with_capacity(TILE_WIDTH as usize);
        if start > 0 {
            let old = tile_path(root, level, index, start);
            let b = fs.read(&old).map_err(|e| Error::io("read tile", &old, e))?;
            if b.len() as u64 != start * 32 {
                return Err(Error::corruption(&old, 0, format!("partial tile holds {} bytes, expected {}", b.len(), start * 32)));
            }
            hashes.extend(b.chunks_exact(32).map(|c| <Hash>::try_from(c).unwrap_or([0; 32])));
            superseded.push(old);
        }
        hashes.extend(new);
        if hashes.len() as u64 > TILE_WIDTH {
            return Err(Error::InvalidArgument(format!("tile {level}/{index} would hold {} hashes", hashes.len())));
        }
        let (_, parent) = write_tile_file(fs, root, level, index, &hashes)?;
        dirs.push(parent);
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        fs.sync_dir(&d).map_err(|e| Error::io("fsync directory", &d, e))?;
    }
    Ok(superseded)
}

/// Writes a level-0 tile (leaf hashes) of `hashes.len()` entries: what
/// retention keeps of the seq group it cuts through.
pub fn write_leaf_tile(fs: &dyn FileSystem, root: &Path, index: u64, hashes: &[Hash]) -> Result<PathBuf> {
    let (path, parent) = write_tile_file(fs, root, 0, index, hashes)?;
    fs.sync_dir(&parent).map_err(|e| Error::io("fsync directory", &parent, e))?;
    Ok(path)
}

/// Writes one tile file of `hashes.len()` entries and fdatasyncs it (its
/// directory is the caller's to fsync); returns its path and directory.
fn write_tile_file(fs: &dyn FileSystem, root: &Path, level: u32, index: u64, hashes: &[Hash]) -> Result<(PathBuf, PathBuf)> {
    let path = tile_path(root, level, index, hashes.len() as u64);
    let parent = path.parent().unwrap_or(root).to_path_buf();
    fs.create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
    let mut f = fs.create(&path).map_err(|e| Error::io("create", &path, e))?;
    let bytes: Vec<u8> = hashes.iter().flatten().copied().collect();
    f.write_all(&bytes).map_err(|e| Error::io("write", &path, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
    Ok((path, parent))
}

/// Reads the hashes of a tile as stored (full or the given partial width).
pub fn read_tile(fs: &dyn FileSystem, root: &Path, level: u32, index: u64, width: u64) -> Result<Vec<Hash>> {
    let path = tile_path(root, level, index, width);
    let b = fs.read(&path).map_err(|e| Error::io("read tile", &path, e))?;
    if b.len() as u64 != width * 32 {
        return Err(Error::corruption(&path, 0, format!("tile holds {} bytes, expected {}", b.len(), width * 32)));
    }
    Ok(b.chunks_exact(32).map(|c| <Hash>::try_from(c).unwrap_or([0; 32])).collect())
}

/// The first `width` hashes of a tile: from the tile of exactly that width,
/// or, when a later seal superseded it, from a wider version of the same
/// tile, which starts with the same hashes.
pub fn read_tile_at_least(fs: &dyn FileSystem, root: &Path, level: u32, index: u64, width: u64) -> Option<Vec<Hash>> {
    if let Ok(t) = read_tile(fs, root, level, index, width) {
        return Some(t);
    }
    let wider = (width + 1..=TILE_WIDTH).rev().find_map(|w| read_tile(fs, root, level, index, w).ok());
    wider.map(|mut t| {
        t.truncate(width as usize);
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: paths follow C2SP tlog-tiles exactly.
    #[test]
    fn c2sp_paths() {
        assert_eq!(tile_index_path(0), "000");
        assert_eq!(tile_index_path(1234067), "x001/x234/067");
        let r = Path::new("t");
        assert_eq!(tile_path(r, 1, 1234067, 256), Path::new("t/tile/1/x001/x234/067"));
        assert_eq!(tile_path(r, 2, 5, 17), Path::new("t/tile/2/005.p/17"));
    }
}
