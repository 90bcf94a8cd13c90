//! Benchmark of the runner: harness overhead per experiment, and how fast a run
//! killed at its deadline is gone.
//!
//! Overhead: `lab run LEAF` as a whole process (integrity checks, the snapshot,
//! database writes, a keeper and a sandboxed worker for `train` and again for
//! `infer`, scoring, reaping; the prepared data cached) against the same
//! `data` + `train` + `infer` called in one plain `python` process, for a
//! trivial script and for one that imports torch (reported as "torch not
//! installed" when the venv lacks it). Medians over [`REPEATS`] runs;
//! "workers" is the part of `lab run` spent in worker processes. The overhead
//! can be negative for heavy imports: a worker exits without finalising the
//! interpreter, which plain `python` does at exit.
//! Scoring: the harness's bits per byte on pretrain's full evaluation outputs
//! (32 rows x 4096 positions x 256 logits, float32, 128 MiB), read from disk.
//! Teardown: the supervisor's own measure (`teardown_s`) from SIGTERM at the
//! deadline to the last process of the run reaped, for a pure-Python loop, a
//! script with a sleeping grandchild, and one that ignores SIGTERM (which waits
//! out the grace). Prints figures only; asserts nothing.
//! `cargo bench -p lab --bench runner` (set LAB_VENV, default `<repo>/.venv`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const REPEATS: usize = 10;
const TEARDOWN_REPEATS: usize = 5;

const DATA: &str = "def data(lab):\n    return {\"train\": None, \"val\": ([0, 1, 2, 3], [0.0] * 4)}\n";
const INFER: &str = "\n\ndef infer(lab, inputs):\n    return [0.5] * len(inputs)\n";
const DIRECT: &str = "import data, train\nd = data.data(None)\ntrain.train(None, d['train'])\n\
                      out = train.infer(None, d['val'][0])\nsum(abs(o - t) for o, t in zip(out, d['val'][1]))\n";

const PREDICTIONS_DATA: &str =
    "def data(lab):\n    return {\"train\": ([0], [0.0]), \"val\": ([0, 1, 2, 3], [0.0] * 4)}\n";
const PREDICT: &str = "def predict(lab, train, inputs):\n    return {s: [0.5] * len(x) for s, x in inputs.items()}\n";
const PREDICTIONS_DIRECT: &str = "import data, train\nd = data.data(None)\n\
                                  out = train.predict(None, d['train'], {'val': d['val'][0]})\n\
                                  sum(abs(o - t) for o, t in zip(out['val'], d['val'][1]))\n";

/// (leaf, train.py without infer, budget)
const LEAVES: &[(&str, &str, &str)] = &[
    ("trivial", "def train(lab, data):\n    return 0.5\n", "60s"),
    ("torch", "def train(lab, data):\n    import torch\n    return float(torch.zeros(1).sum())\n", "60s"),
    ("loop", "def train(lab, data):\n    while True:\n        pass\n", "1s"),
    (
        "orphan",
        "import subprocess, time\n\ndef train(lab, data):\n    subprocess.Popen(['sleep', '1000'])\n    time.sleep(1000)\n",
        "1s",
    ),
    (
        "stubborn",
        "import signal\n\ndef train(lab, data):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n",
        "1s",
    ),
];

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let venv = std::env::var_os("LAB_VENV").map_or_else(|| repo.join(".venv"), PathBuf::from);
    let python = venv.join("bin/python");
    let lab = PathBuf::from(env!("CARGO_BIN_EXE_lab"));
    let tmp = tempfile::Builder::new().prefix("lab-bench").tempdir().unwrap();
    let root = tmp.path();
    setup(&lab, root, &venv);
    let has_torch = Command::new(&python).args(["-c", "import torch"]).output().is_ok_and(|o| o.status.success());

    println!("runner benchmark: medians of {REPEATS} runs, wall clock of whole processes");
    println!(
        "{:<14}{:>14}{:>12}{:>12}{:>10}{:>12}",
        "script", "python direct", "lab run", "overhead", "ratio", "workers"
    );
    for leaf in ["trivial", "predictions", "torch"] {
        if leaf == "torch" && !has_torch {
            println!("{:<14}torch not installed", "import torch");
            continue;
        }
        let dir = root.join("leaves").join(leaf);
        lab_run(&lab, root, &venv, leaf); // prepares and caches the data once, like any leaf's first run
        // Interleaved, so a change in the machine's load hits both alike.
        let (mut directs, mut harnesses, mut workers) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            directs.push(time(Command::new(&python).arg("direct.py").current_dir(&dir)));
            let started = Instant::now();
            let summary = lab_run(&lab, root, &venv, leaf);
            harnesses.push(started.elapsed());
            workers.push(Duration::from_secs_f64(summary["wall_s"].as_f64().unwrap()));
        }
        let (direct, harness, worker) = (median(directs), median(harnesses), median(workers));
        let name = if leaf == "torch" { "import torch" } else { leaf };
        println!(
            "{name:<14}{:>14}{:>12}{:>12}{:>9.2}x{:>12}",
            ms(direct),
            ms(harness),
            format!("{:+.1} ms", (harness.as_secs_f64() - direct.as_secs_f64()) * 1e3),
            harness.as_secs_f64() / direct.as_secs_f64(),
            ms(worker)
        );
    }

    println!(
        "\nteardown: SIGTERM at the deadline to every process of the run gone (median of {TEARDOWN_REPEATS}; grace 0.5 s)"
    );
    for (leaf, what) in
        [("loop", "pure Python loop"), ("orphan", "sleeping grandchild"), ("stubborn", "ignores SIGTERM")]
    {
        let mut teardowns = Vec::new();
        for _ in 0..TEARDOWN_REPEATS {
            let summary = lab_run(&lab, root, &venv, leaf);
            teardowns.push(summary["teardown_s"].as_f64().unwrap_or(f64::NAN));
        }
        teardowns.sort_by(f64::total_cmp);
        let (low, mid, high) = (teardowns[0], teardowns[teardowns.len() / 2], teardowns[teardowns.len() - 1]);
        println!("{what:<22}{:>9.1} ms   (min {:.1}, max {:.1})", mid * 1e3, low * 1e3, high * 1e3);
    }
    scoring(root);
}

/// The harness's bits per byte on pretrain's full evaluation outputs, from disk.
fn scoring(root: &Path) {
    use rand::{Rng as _, SeedableRng as _};
    let (rows, positions, vocab) = (32, 4096, 256);
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let logits = ndarray::Array3::from_shape_fn((rows, positions, vocab), |_| rng.random_range(-4.0f32..4.0));
    let targets = ndarray::Array2::from_shape_fn((rows, positions), |_| rng.random_range(0..vocab as i64));
    let (out, tgt) = (root.join("logits.npy"), root.join("targets.npy"));
    ndarray_npy::write_npy(&out, &logits).unwrap();
    ndarray_npy::write_npy(&tgt, &targets).unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let items =
            lab::supervisor::scoring::items(lab::gate::Scorer::BitsPerByte, &out, &tgt, "val").unwrap().unwrap();
        times.push(started.elapsed());
        assert_eq!(items.as_array().unwrap().len(), rows);
    }
    let mb = std::fs::metadata(&out).unwrap().len() as f64 / (1 << 20) as f64;
    println!(
        "\nscoring: bits per byte of {rows} x {positions} x {vocab} float32 logits ({mb:.0} MiB, read from disk): \
         median {} of 5 (min {})",
        ms(median(times.clone())),
        ms(*times.iter().min().unwrap())
    );
}

fn setup(lab: &Path, root: &Path, venv: &Path) {
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(root)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    run_ok(Command::new(lab).arg("init").current_dir(root).env("LAB_VENV", venv));
    for (name, train, budget) in LEAVES {
        let dir = root.join("leaves").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = format!(
            "version: 1\nname: {name}\ndescription: benchmark leaf\nfiles: {{ mutable: [train.py], frozen: [data.py, direct.py] }}\n\
             metric: {{ name: loss, goal: minimize, kind: mae }}\n\
             entry: {{ mode: artifact, data: \"data:data\", train: \"train:train\", infer: \"train:infer\" }}\n\
             budget: {{ full: {budget}, smoke: {budget} }}\ndevice: cpu\n"
        );
        std::fs::write(dir.join("leaf.yaml"), manifest).unwrap();
        std::fs::write(dir.join("train.py"), format!("{train}{INFER}")).unwrap();
        std::fs::write(dir.join("data.py"), DATA).unwrap();
        std::fs::write(dir.join("direct.py"), DIRECT).unwrap();
        run_ok(Command::new(lab).args(["lock", name]).current_dir(root));
    }
    // The same trivial model in predictions mode: one sandboxed worker instead of two.
    let dir = root.join("leaves").join("predictions");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = "version: 1\nname: predictions\ndescription: benchmark leaf\n\
                    files: { mutable: [train.py], frozen: [data.py, direct.py] }\nmetric: { name: mae, goal: minimize }\n\
                    entry: { mode: predictions, data: \"data:data\", predict: \"train:predict\" }\n\
                    budget: { full: 60s, smoke: 60s }\ndevice: cpu\n";
    std::fs::write(dir.join("leaf.yaml"), manifest).unwrap();
    std::fs::write(dir.join("data.py"), PREDICTIONS_DATA).unwrap();
    std::fs::write(dir.join("train.py"), PREDICT).unwrap();
    std::fs::write(dir.join("direct.py"), PREDICTIONS_DIRECT).unwrap();
    run_ok(Command::new(lab).args(["lock", "predictions"]).current_dir(root));
    // Running the scripts directly must not leave __pycache__ in the leaves.
    std::fs::write(root.join(".gitignore"), "__pycache__/\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "bench leaves"]);
}

fn lab_run(lab: &Path, root: &Path, venv: &Path, leaf: &str) -> serde_json::Value {
    let out =
        Command::new(lab).args(["run", leaf, "-q", "--json"]).current_dir(root).env("LAB_VENV", venv).output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lab run {leaf}: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn time(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    run_ok(cmd);
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
