//! Workloads: which MPC program runs, at which size, with which Python.
//!
//! MPyC's own demos are not in the `mpyc` wheel; the PyPI package
//! `mpyc-web` ships copies (release pinned in `versions.env`), so the lab downloads that wheel once with
//! pip and unpacks the two demos it uses into its cache. The CNN demo needs
//! numpy, which partyline's managed Python has, and its data: the MNIST test
//! set and MPyC's trained weights ship in `data/cnn` (built into the binary),
//! and the large fully-connected layer's weights are generated from a fixed
//! seed (see that folder's README).
//!
//! | demo | low | medium | high | bound by |
//! |---|---|---|---|---|
//! | `mpyc-secretsanta` (MPyC demo, derangements of 2..N) | N=4 | N=8 | N=12 | rounds (latency) |
//! | `mpyc-cnn` (MPyC `np_cnnmnist.py`, batch of B images) | B=1 | B=2 | B=4 | volume (bandwidth) |
//! | `secretsanta` (examples/secretsanta.py, n people) | n=4 | n=8 | n=16 | rounds |
//! | `securesum` (examples/securesum.py, deterministic) | – | – | – | rounds |
//! | `bulk` (examples/bulk.py, MB per party) | 1 | 10 | 50 | volume |
//! | `sort` (examples/sort.py, n numbers per party, fixed cost) | n=8 | n=16 | n=32 | rounds |
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use partyline_launch::mpyc;

use crate::error::{LabError, Result};
use crate::shell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demo {
    MpycSecretSanta,
    MpycCnn,
    SecretSanta,
    SecureSum,
    Bulk,
    Sort,
}

pub const DEMOS: [Demo; 6] = [
    Demo::MpycSecretSanta,
    Demo::MpycCnn,
    Demo::SecretSanta,
    Demo::SecureSum,
    Demo::Bulk,
    Demo::Sort,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Low,
    Medium,
    High,
}

impl Demo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MpycSecretSanta => "mpyc-secretsanta",
            Self::MpycCnn => "mpyc-cnn",
            Self::SecretSanta => "secretsanta",
            Self::SecureSum => "securesum",
            Self::Bulk => "bulk",
            Self::Sort => "sort",
        }
    }

    /// The program's own arguments at `size`.
    fn args(self, size: Size) -> Vec<String> {
        let pick = |low: &str, medium: &str, high: &str| match size {
            Size::Low => low.to_string(),
            Size::Medium => medium.to_string(),
            Size::High => high.to_string(),
        };
        match self {
            Self::MpycSecretSanta => vec![pick("4", "8", "12")],
            Self::MpycCnn => vec![pick("1", "2", "4"), "0".into()],
            Self::SecretSanta => vec![pick("4", "8", "16")],
            Self::SecureSum => Vec::new(),
            Self::Bulk => vec![pick("1", "10", "50")],
            Self::Sort => vec![pick("8", "16", "32")],
        }
    }
}

impl fmt::Display for Demo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Demo {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self> {
        DEMOS.into_iter().find(|d| d.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = DEMOS.iter().map(|d| d.as_str()).collect();
            LabError::invalid("demo", format!("{s:?}; use one of {}", known.join(", ")))
        })
    }
}

impl Size {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Size {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(LabError::invalid(
                "size",
                format!("{s:?}; use low, medium or high"),
            )),
        }
    }
}

/// Where the lab finds what workloads need.
#[derive(Debug, Clone)]
pub struct Sources {
    /// A Python with the pinned MPyC (partyline's managed one).
    pub python: PathBuf,
    /// The lab's cache (the demo wheel, the CNN data).
    pub cache: PathBuf,
    /// MNIST data and CNN weights to use instead of the shipped ones and
    /// the generated `W_fc1.npy`.
    pub cnn_data: Option<PathBuf>,
}

/// A program ready to run: one file, its arguments, its Python.
#[derive(Debug, Clone)]
pub struct Workload {
    pub demo: Demo,
    pub size: Size,
    pub python: PathBuf,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// To be linked as `data/cnn` in each party's working directory.
    pub cnn_data: Option<PathBuf>,
}

impl Workload {
    /// Prepares `demo` at `size`: downloads and builds what it needs once.
    pub fn prepare(demo: Demo, size: Size, sources: &Sources) -> Result<Self> {
        let (program, python, cnn_data) = match demo {
            Demo::SecretSanta | Demo::SecureSum | Demo::Bulk | Demo::Sort => {
                (example(sources, demo)?, sources.python.clone(), None)
            }
            Demo::MpycSecretSanta => (
                mpyc_demo(sources, "secretsanta.py")?,
                sources.python.clone(),
                None,
            ),
            Demo::MpycCnn => {
                check_numpy(&sources.python)?;
                let data = match &sources.cnn_data {
                    Some(data) => data.clone(),
                    None => cnn_data(sources)?,
                };
                (
                    mpyc_demo(sources, "np_cnnmnist.py")?,
                    sources.python.clone(),
                    Some(data),
                )
            }
        };
        if !program.is_file() {
            return Err(LabError::invalid(
                "program",
                format!("{} does not exist", program.display()),
            ));
        }
        Ok(Self {
            demo,
            size,
            python,
            program,
            args: demo.args(size),
            cnn_data,
        })
    }

    /// Prepares a party's working directory.
    pub fn setup_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(LabError::io(dir))?;
        if let Some(data) = &self.cnn_data {
            let parent = dir.join("data");
            std::fs::create_dir_all(&parent).map_err(LabError::io(&parent))?;
            let link = parent.join("cnn");
            if !link.exists() {
                std::os::unix::fs::symlink(data, &link).map_err(LabError::io(&link))?;
            }
        }
        Ok(())
    }
}

/// One of the repository's examples (built into the binary), written into the cache.
fn example(sources: &Sources, demo: Demo) -> Result<PathBuf> {
    let dir = sources.cache.join("examples");
    std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
    let path = dir.join(format!("{demo}.py"));
    let text = mpyc::example(&format!("{demo}.py"))
        .ok_or_else(|| LabError::invalid("example", demo.to_string()))?;
    std::fs::write(&path, text).map_err(LabError::io(&path))?;
    Ok(path)
}

/// A demo file from the mpyc-web wheel, downloaded and unpacked once.
fn mpyc_demo(sources: &Sources, file: &str) -> Result<PathBuf> {
    let unpacked_name = format!("mpyc-web-{}", mpyc::WEB_VERSION);
    let dir = sources.cache.join(&unpacked_name);
    let wanted = dir.join("demos").join(file);
    if wanted.is_file() {
        return Ok(wanted);
    }
    let staging = sources.cache.join(format!(".{unpacked_name}.download"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(LabError::io(&staging))?;
    let python = sources.python.to_string_lossy().into_owned();
    let staging_s = staging.to_string_lossy().into_owned();
    shell::run(
        &python,
        [
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            &format!("mpyc-web=={}", mpyc::WEB_VERSION),
            "-d",
            &staging_s,
        ],
    )?;
    let wheel = std::fs::read_dir(&staging)
        .map_err(LabError::io(&staging))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| LabError::invalid("mpyc-web download", "pip left no wheel"))?;
    let unpacked = staging.join("wheel");
    shell::run(
        &python,
        [
            "-m",
            "zipfile",
            "-e",
            &wheel.to_string_lossy(),
            &unpacked.to_string_lossy(),
        ],
    )?;
    // Only the demos: the wheel's own bundled `mpyc/` must not shadow the pinned mpyc.
    let demos = staging.join("demos");
    std::fs::create_dir_all(&demos).map_err(LabError::io(&demos))?;
    for name in ["secretsanta.py", "np_cnnmnist.py"] {
        let from = unpacked.join(name);
        std::fs::copy(&from, demos.join(name)).map_err(LabError::io(&from))?;
    }
    let _ = std::fs::remove_dir_all(&unpacked);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).map_err(LabError::io(&dir))?;
    Ok(wanted)
}

/// The CNN data shipped in `data/cnn`: the MNIST test set and MPyC's
/// trained weights, all but `W_fc1.npy` (see that folder's README).
const CNN_FILES: [(&str, &[u8]); 9] = [
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../data/cnn/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../data/cnn/t10k-labels-idx1-ubyte.gz"),
    ),
    ("W_conv1.npy", include_bytes!("../data/cnn/W_conv1.npy")),
    ("b_conv1.npy", include_bytes!("../data/cnn/b_conv1.npy")),
    ("W_conv2.npy", include_bytes!("../data/cnn/W_conv2.npy")),
    ("b_conv2.npy", include_bytes!("../data/cnn/b_conv2.npy")),
    ("b_fc1.npy", include_bytes!("../data/cnn/b_fc1.npy")),
    ("W_fc2.npy", include_bytes!("../data/cnn/W_fc2.npy")),
    ("b_fc2.npy", include_bytes!("../data/cnn/b_fc2.npy")),
];

/// The seed of the generated `W_fc1.npy`.
pub const FC1_SEED: u64 = 1_024;

/// Writes `W_fc1.npy` (argv[1]): the layer's shape and type (3136×1024
/// float32), normal noise with the original's spread, from seed argv[2].
const GENERATE_FC1: &str = "import sys, numpy as np\n\
    w = np.random.default_rng(int(sys.argv[2])).normal(0.0, 0.03, (3136, 1024))\n\
    np.save(sys.argv[1], w.astype(np.float32))\n";

/// The CNN data directory in the cache: the shipped files and the generated
/// `W_fc1.npy`, made once per seed and numpy release.
fn cnn_data(sources: &Sources) -> Result<PathBuf> {
    let name = format!("cnn-data-seed{FC1_SEED}-numpy{}", mpyc::NUMPY.version);
    let dir = sources.cache.join(&name);
    if dir.join("W_fc1.npy").is_file() {
        return Ok(dir);
    }
    let staging = sources.cache.join(format!(".{name}.building"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(LabError::io(&staging))?;
    for (file, bytes) in CNN_FILES {
        let path = staging.join(file);
        std::fs::write(&path, bytes).map_err(LabError::io(&path))?;
    }
    let fc1 = staging.join("W_fc1.npy");
    shell::run(
        &sources.python.to_string_lossy(),
        [
            "-c",
            GENERATE_FC1,
            &fc1.to_string_lossy(),
            &FC1_SEED.to_string(),
        ],
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).map_err(LabError::io(&dir))?;
    Ok(dir)
}

/// Fails, saying how to fix it, unless `python` can import numpy, which the
/// CNN demo needs.
fn check_numpy(python: &Path) -> Result<()> {
    let imports = Command::new(python)
        .args(["-c", "import numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imports {
        return Ok(());
    }
    Err(LabError::invalid(
        "Python for mpyc-cnn",
        format!(
            "{python} cannot import numpy, which np_cnnmnist.py needs: install it with `{python} -m pip install {numpy}`, or drop --python (and unset PARTYLINE_PYTHON) to use partyline's own Python",
            python = python.display(),
            numpy = mpyc::NUMPY.requirement(),
        ),
    ))
}
