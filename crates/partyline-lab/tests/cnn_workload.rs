//! The CNN workload (MPyC's np_cnnmnist.py) needs nothing outside the
//! project: the MNIST test set and MPyC's small weights come with partyline,
//! the large layer's weights are generated from a fixed seed, and numpy
//! comes with partyline's managed Python. Needs PyPI once for the demo wheel.
mod common;

use std::process::Command;

use partyline_lab::workload::{Demo, Size, Sources, Workload};
use partyline_launch::mpyc::NUMPY;

#[test]
fn the_cnn_demo_classifies_a_shipped_image_with_generated_weights() {
    let cache = tempfile::tempdir().unwrap();
    let sources = common::sources(cache.path());
    assert_eq!(sources.cnn_data, None);
    let workload = Workload::prepare(Demo::MpycCnn, Size::Low, &sources).unwrap();
    let dir = cache.path().join("party");
    workload.setup_dir(&dir).unwrap();

    // One process plays every party (-M1): the data loads and the network runs.
    let out = Command::new(&workload.python)
        .arg(&workload.program)
        .args(&workload.args)
        .arg("-M1")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The label is the shipped MNIST test set's; the prediction, from
    // seeded stand-in weights, means nothing.
    assert!(stdout.contains("Image #0 with label 7: "), "{stdout}");
    assert!(!stdout.contains("Install package"), "{stdout}");

    // The seed fixes the generated weights: another cache gets the same file.
    let other = tempfile::tempdir().unwrap();
    let again = Workload::prepare(Demo::MpycCnn, Size::Low, &common::sources(other.path()));
    let weights = |workload: &Workload| {
        let data = workload.cnn_data.as_ref().expect("a CNN data folder");
        std::fs::read(data.join("W_fc1.npy")).unwrap()
    };
    let generated = weights(&workload);
    assert_eq!(
        generated.len(),
        128 + 3136 * 1024 * 4,
        "npy header + float32s"
    );
    assert!(generated == weights(&again.unwrap()));
}

#[test]
fn a_python_without_numpy_is_refused_with_the_install_command() {
    let cache = tempfile::tempdir().unwrap();
    let bare = cache.path().join("bare");
    let created = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(created.success());
    let sources = Sources {
        python: bare.join("bin/python"),
        ..common::sources(cache.path())
    };
    let message = Workload::prepare(Demo::MpycCnn, Size::Low, &sources)
        .unwrap_err()
        .to_string();
    assert!(message.contains("cannot import numpy"), "{message}");
    assert!(
        message.contains(&format!("-m pip install {}", NUMPY.requirement())),
        "{message}"
    );
}
