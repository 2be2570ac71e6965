//! partyline's own MPyC example programs, built into the binary so that
//! `demo` and `bench` work from an installed executable.
use std::path::{Path, PathBuf};

/// (file name, source) of every example.
const EXAMPLES: [(&str, &str); 4] = [
    (
        "secretsanta.py",
        include_str!("../../../examples/secretsanta.py"),
    ),
    (
        "securesum.py",
        include_str!("../../../examples/securesum.py"),
    ),
    ("bulk.py", include_str!("../../../examples/bulk.py")),
    ("sort.py", include_str!("../../../examples/sort.py")),
];

/// Writes the examples into `dir` and returns the path of `name` there.
pub fn write_to(dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    for (file, source) in EXAMPLES {
        std::fs::write(dir.join(file), source)?;
    }
    Ok(dir.join(name))
}
