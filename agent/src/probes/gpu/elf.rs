//! File offsets of a shared library's exported functions, where uprobes attach.
//!
//! The dynamic symbol table is read through a block cache (`object::ReadCache`), so a
//! 100 MB driver library costs its ELF headers and `.dynsym`/`.dynstr`, not a full
//! read or a mapping that a concurrent truncation could turn into SIGBUS.
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Object, ObjectSection, ObjectSymbol};

/// Why a library's symbols could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("opening {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable ELF shared object: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: object::Error,
    },
}

/// The file offset of each of `names` that `path` defines and exports; names it does
/// not define are absent from the map. A symbol's offset is its address translated
/// through the section that holds it (what the kernel's uprobe wants).
pub fn exported_offsets(path: &Path, names: &[&str]) -> Result<HashMap<String, u64>, ElfError> {
    let file = File::open(path).map_err(|source| ElfError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cache = ReadCache::new(file);
    let parse = |source| ElfError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let object = object::File::parse(&cache).map_err(parse)?;
    let mut found = HashMap::new();
    for symbol in object.dynamic_symbols() {
        if !symbol.is_definition() || symbol.kind() != object::SymbolKind::Text {
            continue;
        }
        let Ok(name) = symbol.name() else {
            continue;
        };
        if !names.contains(&name) || found.contains_key(name) {
            continue;
        }
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let section = object.section_by_index(index).map_err(parse)?;
        let Some((file_start, _)) = section.file_range() else {
            continue;
        };
        let Some(offset) = symbol
            .address()
            .checked_sub(section.address())
            .and_then(|within| within.checked_add(file_start))
        else {
            continue;
        };
        found.insert(name.to_string(), offset);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("libcuda.so.1");
        let err = exported_offsets(&missing, &["cuInit"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("opening {}", missing.display())),
            "{err}"
        );
        std::fs::write(&missing, b"not an ELF file at all").unwrap();
        let err = exported_offsets(&missing, &["cuInit"]).unwrap_err();
        assert!(err.to_string().contains("is not a readable ELF"), "{err}");
    }

    #[test]
    fn a_real_library_exports_its_functions() {
        // The test binary itself links libc dynamically: its libc has `getpid`.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("/libc.so"))
            .expect("libc mapped");
        let found = exported_offsets(Path::new(libc), &["getpid", "no_such_fn"]).unwrap();
        assert!(found.contains_key("getpid"), "{found:?}");
        assert!(!found.contains_key("no_such_fn"));
        assert!(found["getpid"] > 0);
    }
}
