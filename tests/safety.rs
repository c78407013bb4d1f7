//! Nothing lost, nothing silently wrong, from the command line: output folders that are not the
//! command's own (or are its inputs) are refused and left as they were; runs are locked, resume
//! never loses or overwrites the best model and keeps the run's settings; checkpoints refuse a
//! vocabulary they were not trained with; bad inputs are named errors with exit status 1.

#[path = "support/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cli::{demo_tiny, fails, ok, prepare, prepare_shapes, snapshot, train, trained_run, xtask};

/// Asserts that two snapshots hold the same files with the same bytes, naming those that differ.
fn assert_same(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let changed: Vec<&PathBuf> =
        before.keys().chain(after.keys()).filter(|path| before.get(*path) != after.get(*path)).collect();
    assert!(changed.is_empty(), "{what}: {changed:?}");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A Kaggle captions file and its images folder: `names` images of 80 px, five captions each.
fn kaggle_source(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let images = dir.join("photos");
    std::fs::create_dir_all(&images).unwrap();
    let mut text = String::from("image,caption\n");
    for (i, name) in names.iter().enumerate() {
        let shade = (40 * i % 256) as u8;
        image::RgbImage::from_pixel(80, 80, image::Rgb([shade, 100, 200])).save(images.join(name)).unwrap();
        for k in 0..5 {
            text.push_str(&format!("{name},A blue picture number {k} .\n"));
        }
    }
    let captions = dir.join("captions.txt");
    std::fs::write(&captions, text).unwrap();
    (captions, images)
}

fn prepare_from_command(captions: &Path, images: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = xtask(&["prepare-data", "-q", "--threshold", "1", "--captions"]);
    command.arg(captions).arg("--images-dir").arg(images).arg("--out").arg(out).args(extra);
    command
}

fn prepare_from(captions: &Path, images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    prepare_from_command(captions, images, out, extra).output().unwrap()
}

#[test]
fn output_folders_that_are_not_the_commands_own_or_are_inputs_are_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let names: Vec<String> = (0..12).map(|i| format!("p{i}.png")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (captions, images) = kaggle_source(root, &names);
    write(&root.join("thesis/chapter1.tex"), "\\chapter{One}");
    let before = snapshot(root);

    // A folder with a user's files, the images folder, the folder holding it, the same through
    // `..`, the captions file itself: all refused, nothing changed.
    let thesis = fails(prepare_from(&captions, &images, &root.join("thesis"), &[]));
    assert!(thesis.contains("chapter1.tex") && thesis.contains("not a prepared dataset"), "{thesis}");
    for out in [images.clone(), root.to_path_buf(), images.join("../photos"), captions.clone()] {
        let message = fails(prepare_from(&captions, &images, &out, &[]));
        assert!(message.contains("never replaces what it reads"), "{}: {message}", out.display());
    }
    // `--out .` run from the folder holding the images.
    let message =
        fails(prepare_from_command(&captions, &images, Path::new("."), &[]).current_dir(root).output().unwrap());
    assert!(message.contains("never replaces what it reads"), "{message}");
    assert_same(&before, &snapshot(root), "a refused command changed files");

    // The demo refuses the same folders for its dataset and its run.
    let demo = |data: &Path, run: &Path| demo_tiny(data, run).output().unwrap();
    assert!(fails(demo(&root.join("thesis"), &root.join("run"))).contains("chapter1.tex"));
    assert!(fails(demo(&root.join("data"), &root.join("thesis"))).contains("chapter1.tex"));
    assert_eq!(std::fs::read_to_string(root.join("thesis/chapter1.tex")).unwrap(), "\\chapter{One}");

    // A dataset is replaced by the next preparation; once a user's file is in it, it is not.
    let out = root.join("dataset");
    ok(prepare_from(&captions, &images, &out, &[]));
    ok(prepare_from(&captions, &images, &out, &["--original-compatible"]));
    write(&out.join("notes.txt"), "mine");
    assert!(fails(prepare_from(&captions, &images, &out, &[])).contains("notes.txt"));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");

    // A run folder holding something else is refused by train.
    let run_message = fails(train(&out, &root.join("thesis"), &["--epochs", "1"]).output().unwrap());
    assert!(run_message.contains("chapter1.tex") && run_message.contains("not a training run"), "{run_message}");
}

#[test]
fn inputs_that_would_mislead_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (captions, images) = kaggle_source(root, &["a.png", "b.png", "c.png"]);
    let listing = || snapshot(root).into_keys().collect::<Vec<_>>();

    // Image names leading outside the images folder are refused and listed; nothing is read.
    let mut text = std::fs::read_to_string(&captions).unwrap();
    text.push_str("/etc/passwd,A secret .\n../captions.txt,A way out .\n");
    let outside = root.join("outside.txt");
    std::fs::write(&outside, &text).unwrap();
    let before = listing();
    let message = fails(prepare_from(&outside, &images, &root.join("out"), &[]));
    assert!(
        message.contains("\"/etc/passwd\" (line 17)") && message.contains("\"../captions.txt\" (line 18)"),
        "{message}"
    );
    assert_eq!(listing(), before);

    // An unclosed quote is reported at its line, by prepare-data and by vocab.
    let mut lines: Vec<&str> = text.lines().take(16).collect();
    lines[3] = "a.png,\"A blue picture with an open quote .";
    let unclosed = root.join("unclosed.txt");
    std::fs::write(&unclosed, lines.join("\n") + "\n").unwrap();
    let message = fails(prepare_from(&unclosed, &images, &root.join("out"), &[]));
    assert!(message.contains("unclosed.txt:4: a double quote opened on this line is not closed"), "{message}");
    let message = fails(xtask(&["vocab", "--out"]).arg(root.join("v.json")).arg(&unclosed).output().unwrap());
    assert!(message.contains("unclosed.txt:4"), "{message}");

    // Splits without training images: by the ratios, or by a source's own splits.
    let output = prepare_from(&captions, &images, &root.join("out"), &["--split-ratios", "0/50/50"]);
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("training share"));
    let karpathy = root.join("karpathy.json");
    let document = serde_json::json!({"images": [
        {"filename": "a.png", "split": "test", "sentences": [{"raw": "A blue one ."}]},
        {"filename": "b.png", "split": "val", "sentences": [{"raw": "A blue two ."}]}]});
    std::fs::write(&karpathy, document.to_string()).unwrap();
    let message = fails(prepare_from(&karpathy, &images, &root.join("out"), &[]));
    assert!(message.contains("no usable image is in the training split (1 validation, 1 test"), "{message}");

    // Sizes are checked before anything is allocated or written.
    let before = listing();
    let started = Instant::now();
    let shapes = |extra: &[&str]| {
        xtask(&["prepare-data", "--dataset", "shapes", "--images", "5", "-q", "--out"])
            .arg(root.join("big"))
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(fails(shapes(&["--size", "100000"])).contains("100000 px"));
    assert!(fails(shapes(&["--resize", "100000"])).contains("--resize 100000"));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(listing(), before, "a refused preparation left files");

    // Each cause once, naming the file: a missing image with --strict, a full standard output.
    let strict = root.join("strict.txt");
    std::fs::write(&strict, "image,caption\na.png,A blue one .\nmissing.png,A lost one .\n").unwrap();
    let message = fails(prepare_from(&strict, &images, &root.join("out"), &["--strict"]));
    let named = format!("image {}: missing file", images.join("missing.png").display());
    assert!(message.contains(&named) && message.matches("missing file").count() == 1, "{message}");
    let full = std::fs::File::create("/dev/full").unwrap();
    let message = fails(xtask(&["tokenize"]).arg(&captions).stdout(full).output().unwrap());
    assert!(message.contains("standard output: No space left on device"), "{message}");
    assert_eq!(message.matches("No space left").count(), 1, "{message}");

    // A missing images folder is named as such; a captions file that is a folder, a device or a
    // FIFO is refused without being read.
    let message = fails(prepare_from(&captions, &root.join("nowhere"), &root.join("out"), &[]));
    assert!(message.contains("nowhere: no such folder"), "{message}");
    let message = fails(prepare_from(Path::new("/dev/zero"), &images, &root.join("out"), &[]));
    assert!(message.contains("/dev/zero: not a regular file (a device)"), "{message}");
}

/// The newest checkpoint folder of a run.
fn newest_checkpoint(run: &Path) -> PathBuf {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("step-"))
        .collect();
    steps.sort();
    steps.pop().unwrap()
}

fn best_score(checkpoint: &Path) -> f64 {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checkpoint.join("trainer.json")).unwrap()).unwrap();
    state["best"]["score"].as_f64().unwrap()
}

fn truncate(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    std::fs::write(file, &bytes[..bytes.len() / 3]).unwrap();
}

#[test]
fn resume_falls_back_to_best_keeps_the_runs_settings_and_never_loses_the_best_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 24);
    let run = dir.path().join("run");
    ok(train(&data, &run, &["--epochs", "3", "--keep-last", "1"]).output().unwrap());
    let score = best_score(&run.join("best"));
    let best_model = std::fs::read(run.join("best/model.safetensors")).unwrap();

    // The only checkpoint truncated: resume continues from best/, moves the damaged one aside
    // (never deletes it) and keeps best/ unless a better model comes.
    let damaged = newest_checkpoint(&run);
    truncate(&damaged.join("model.safetensors"));
    let out = ok(train(&data, &run, &["--epochs", "4", "--keep-last", "1", "--resume"]).output().unwrap());
    assert!(out.contains(&format!("resuming from {}", run.join("best").display())), "{out}");
    assert!(out.contains("moved the damaged checkpoint"), "{out}");
    assert!(run.join("damaged").join(damaged.file_name().unwrap()).join("trainer.json").is_file());
    let new_score = best_score(&run.join("best"));
    assert!(new_score >= score, "best/ went from {score} to {new_score}");
    if new_score == score {
        assert_eq!(std::fs::read(run.join("best/model.safetensors")).unwrap(), best_model);
    }
    // metrics.jsonl holds each step and each epoch once.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<u64> =
        rows.iter().filter(|r| r.get("loss").is_some()).map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>(), "{metrics}");
    let epochs: Vec<u64> =
        rows.iter().filter(|r| r.get("train_loss").is_some()).map(|r| r["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3, 4]);

    // --resume takes the run's settings: the README's call without the sizes works; a setting that
    // may change is applied and said; one that may not is refused by its option's name.
    let out = ok(xtask(&["train", "--data"])
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .args(["--resume", "--epochs", "5", "--lr", "0.001", "--device", "cpu", "-q"])
        .output()
        .unwrap());
    assert!(out.contains("resuming with epochs 5 (was 4)") && out.contains("learning_rate 0.001 (was 0.003)"), "{out}");
    let message = fails(
        xtask(&["train", "--data"])
            .arg(&data)
            .arg("--run")
            .arg(&run)
            .args(["--resume", "--epochs", "6", "--lr", "0.5", "--batch-size", "4", "--device", "cpu"])
            .output()
            .unwrap(),
    );
    assert!(message.contains("--batch-size batch_size (the run's 16, asked 4)"), "{message}");
    assert!(!message.contains("--lr"), "{message}");

    // config.toml lost: the checkpoints still say it is a run, and it resumes.
    std::fs::remove_file(run.join("config.toml")).unwrap();
    let out = ok(train(&data, &run, &["--epochs", "6", "--keep-last", "1", "--resume"]).output().unwrap());
    assert!(out.contains("resuming from") && out.contains("epoch 6/6"), "{out}");

    // Nothing valid left: refused, nothing changed.
    for checkpoint in [newest_checkpoint(&run), run.join("best")] {
        truncate(&checkpoint.join("trainer.json"));
    }
    let mut before = snapshot(&run);
    let message = fails(train(&data, &run, &["--epochs", "7", "--resume"]).output().unwrap());
    assert!(message.contains("nothing to resume from"), "{message}");
    // Only the lock file names the last process that held the run.
    let mut after = snapshot(&run);
    before.remove(Path::new(".lock"));
    after.remove(Path::new(".lock"));
    assert_same(&before, &after, "a refused resume changed the run");
}

#[test]
fn a_run_is_trained_by_one_process_at_a_time_and_a_killed_ones_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 24);
    let run = dir.path().join("run");
    let mut first = train(&data, &run, &["--epochs", "500", "--resume"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(run.join(".lock")).unwrap_or_default() != first.id().to_string() {
        assert!(started.elapsed() < Duration::from_secs(60), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let message = fails(train(&data, &run, &["--epochs", "500", "--resume"]).output().unwrap());
    assert!(message.contains(&format!("in use by another training process (process {})", first.id())), "{message}");
    first.kill().unwrap(); // SIGKILL: no chance to unlock
    first.wait().unwrap();
    ok(train(&data, &run, &["--epochs", "1", "--resume"]).output().unwrap());
}

#[test]
fn checkpoints_refuse_a_tokenizer_they_were_not_trained_with_and_commands_refuse_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (data, run) = trained_run(root);
    let image = data.join("images/shapes_00000.png");
    ok(xtask(&["caption", "--device", "cpu", "--checkpoint"]).arg(&run).arg(&image).output().unwrap());

    // Two words' ids swapped: same size, another vocabulary. Refused, naming the first id.
    let tokenizer = run.join("best/tokenizer.json");
    let mut document: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&tokenizer).unwrap()).unwrap();
    let vocab = document["model"]["vocab"].as_object_mut().unwrap();
    let (red, blue) = (vocab["red"].clone(), vocab["blue"].clone());
    vocab.insert("red".into(), blue.clone());
    vocab.insert("blue".into(), red.clone());
    std::fs::write(&tokenizer, document.to_string()).unwrap();
    let message = fails(xtask(&["caption", "--device", "cpu", "--checkpoint"]).arg(&run).arg(&image).output().unwrap());
    let first = red.as_u64().unwrap().min(blue.as_u64().unwrap());
    assert!(message.contains(&format!("not the vocabulary the model was trained with: id {first}")), "{message}");

    // Without its tokenizer.json, the checkpoint says so.
    std::fs::remove_file(&tokenizer).unwrap();
    let message = fails(xtask(&["caption", "--device", "cpu", "--checkpoint"]).arg(&run).arg(&image).output().unwrap());
    assert!(message.contains("tokenizer.json is missing"), "{message}");

    // The dataset's own tokenizer.json into best/: the model works again.
    std::fs::copy(data.join("tokenizer.json"), &tokenizer).unwrap();
    ok(xtask(&["caption", "--device", "cpu", "--checkpoint"]).arg(&run).arg(&image).output().unwrap());

    // Image inputs: an empty folder, a device and a FIFO are errors, and none blocks.
    std::fs::create_dir(root.join("empty")).unwrap();
    let caption =
        |input: &Path| xtask(&["caption", "--device", "cpu", "--checkpoint"]).arg(&run).arg(input).output().unwrap();
    assert!(fails(caption(&root.join("empty"))).contains("no images in"));
    let started = Instant::now();
    assert!(fails(caption(Path::new("/dev/zero"))).contains("not a regular file (a device)"));
    let fifo = root.join("fifo.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert!(fails(caption(&fifo)).contains("not a regular file (a FIFO)"));
    assert!(started.elapsed() < Duration::from_secs(60));

    // features: integer or non-finite pixels are refused, saying what is expected.
    let weights = run.join("best/model.safetensors");
    let features = |tensor: candle_core::Tensor| {
        let input = root.join("x.safetensors");
        candle_core::safetensors::save(&std::collections::HashMap::from([("images".to_string(), tensor)]), &input)
            .unwrap();
        xtask(&["features", "--device", "cpu", "--weights"])
            .arg(&weights)
            .arg("--input-tensor")
            .arg(&input)
            .arg("--out")
            .arg(root.join("f.safetensors"))
            .output()
            .unwrap()
    };
    let device = candle_core::Device::Cpu;
    let bytes = candle_core::Tensor::zeros((1, 3, 80, 80), candle_core::DType::U8, &device).unwrap();
    assert!(fails(features(bytes)).contains("is U8; expected floating-point pixels"));
    let mut values = vec![0f32; 3 * 80 * 80];
    values[7] = f32::NAN;
    let nan = candle_core::Tensor::from_vec(values, (1, 3, 80, 80), &device).unwrap();
    assert!(fails(features(nan)).contains("non-finite value (NaN) at flat index 7"));
    let small = candle_core::Tensor::zeros((1, 3, 50, 50), candle_core::DType::F32, &device).unwrap();
    assert!(fails(features(small)).contains("are 50×50 pixels; Inception v3 needs at least 75×75"));
    // No backtrace in an error, even when asked for one (fails() checks).
    let mut cuda = xtask(&["caption", "--device", "cuda", "--checkpoint"]);
    let message = fails(cuda.arg(&run).arg(&image).env("RUST_BACKTRACE", "1").output().unwrap());
    assert!(message.lines().count() == 1, "{message}");
    assert!(!root.join("f.safetensors").exists());

    // An output that is the input: refused, the input unchanged.
    let model = std::fs::read(&weights).unwrap();
    let message = fails(xtask(&["import-checkpoint"]).arg(&weights).arg("--out").arg(&weights).output().unwrap());
    assert!(message.contains("never replaces what it reads"), "{message}");
    assert_eq!(std::fs::read(&weights).unwrap(), model);
    let captions = root.join("captions.txt");
    std::fs::write(&captions, "image,caption\na.png,A dog .\n").unwrap();
    let message = fails(xtask(&["vocab", "--out"]).arg(&captions).arg(&captions).output().unwrap());
    assert!(message.contains("never replaces what it reads"), "{message}");
    assert_eq!(std::fs::read_to_string(&captions).unwrap(), "image,caption\na.png,A dog .\n");

    // A dataset of the old layout (token ids with <SOS>/<EOS>) is refused by train, with the way out.
    let manifest = data.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"layout_version\": 2", "\"layout_version\": 1")).unwrap();
    let message = fails(train(&data, &root.join("run2"), &["--epochs", "1"]).output().unwrap());
    assert!(message.contains("prepare it again with `cargo xtask prepare-data`"), "{message}");
}

/// Kills a child after `millis` (SIGKILL); returns whether it was still running.
fn kill_after(mut child: std::process::Child, millis: u64) -> bool {
    std::thread::sleep(Duration::from_millis(millis));
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    alive
}

/// Names in `folder`, sorted.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn prepare_and_train_killed_at_random_moments_touch_nothing_but_their_own_files() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A user's files beside the outputs, one named like a writer's leftover but of a live
    // process (process 1 never dies).
    write(&root.join("notes.txt"), "mine");
    write(&root.join(".shapes.partial-1/keep.txt"), "also mine");
    let user = snapshot(root);
    let still_there = |stage: &str| {
        let now = snapshot(root);
        for (path, bytes) in &user {
            assert_eq!(now.get(path), Some(bytes), "{stage}: {} lost or changed", path.display());
        }
    };

    // prepare-data, killed at random moments; only its staging folders may be left beside.
    let prepare_cmd = || {
        // Large enough to take a second or two: most kills land mid-way.
        let mut command = xtask(&["prepare-data", "--dataset", "shapes", "--images", "3000", "--size", "80", "-q"]);
        command.arg("--out").arg(root.join("shapes")).args(["--threshold", "2", "--resize", "75"]);
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        command
    };
    let mut hits = 0;
    for _ in 0..6 {
        hits += usize::from(kill_after(prepare_cmd().spawn().unwrap(), rng.random_range(20..1400)));
        still_there("prepare-data killed");
        for name in names(root) {
            let known = ["notes.txt", ".shapes.partial-1", "shapes"].contains(&name.as_str());
            assert!(known || name.starts_with(".shapes.partial-") || name.starts_with(".shapes.old-"), "{name}");
        }
    }
    assert!(hits >= 3, "only {hits} of 6 kills hit a running preparation");
    ok(prepare_cmd().output().unwrap());
    still_there("prepare-data finished");
    assert_eq!(names(root), [".shapes.partial-1", "notes.txt", "shapes"], "leftovers of killed runs remain");
    caption_data::PreparedDataset::open(&root.join("shapes")).unwrap();
    let data = root.join("small");
    ok(prepare_shapes(&data, 24).output().unwrap());

    // train, killed at random moments, with a user's files inside the run.
    let run = root.join("run");
    ok(train(&data, &run, &["--epochs", "1"]).output().unwrap());
    write(&run.join("notes.txt"), "run notes");
    write(&run.join("checkpoints/README"), "my checkpoints");
    let user = snapshot(root)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("run") || p.ends_with("notes.txt") || p.ends_with("README"))
        .collect::<BTreeMap<_, _>>();
    let settings = ["--epochs", "8", "--checkpoint-every", "2", "--no-validation-bleu", "--resume"];
    let mut hits = 0;
    for _ in 0..6 {
        let at_start = newest_checkpoint(&run);
        let mut child = train(&data, &run, &settings)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed at a random moment after the process wrote a checkpoint of its own (a step, a
        // checkpoint write, a prune), whatever this machine's speed: 16 steps, one checkpoint
        // every 2, so each of the six processes is killed before the run ends.
        let waiting = Instant::now();
        while newest_checkpoint(&run) == at_start
            && child.try_wait().unwrap().is_none()
            && waiting.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        hits += usize::from(kill_after(child, rng.random_range(0..40)));
        let now = snapshot(root);
        for (path, bytes) in &user {
            assert_eq!(now.get(path), Some(bytes), "train killed: {} lost or changed", path.display());
        }
        let foreign = caption_io::foreign_entries(&run, &caption_train::run_folder::is_run_entry).unwrap();
        assert_eq!(foreign, [PathBuf::from("checkpoints/README"), PathBuf::from("notes.txt")]);
    }
    assert!(hits >= 3, "only {hits} of 6 kills hit a running training");
    ok(train(&data, &run, &settings).output().unwrap());
    let hidden =
        |folder: &Path| names(folder).into_iter().filter(|n| n.starts_with('.') && n != ".lock").collect::<Vec<_>>();
    assert!(hidden(&run).is_empty() && hidden(&run.join("checkpoints")).is_empty(), "leftovers of killed runs remain");
    assert_eq!(std::fs::read_to_string(run.join("notes.txt")).unwrap(), "run notes");
    assert_eq!(std::fs::read_to_string(run.join("checkpoints/README")).unwrap(), "my checkpoints");
    let summary = std::fs::read_to_string(newest_checkpoint(&run).join("trainer.json")).unwrap();
    assert!(summary.contains("\"epoch\": 8"), "{summary}");
}

/// Where the property test puts a user's files, and the names it gives them: names of the
/// commands' own files too, except inside folders that already are a dataset or a run (there,
/// those names are the command's).
const PLACES: [&str; 9] = [
    "",
    "data",
    "data/images",
    "run",
    "run/checkpoints",
    "run/best",
    "run/eval-test",
    "run/checkpoints/step-000000002",
    "elsewhere",
];
const OWN_NAMES: [&str; 9] = [
    "manifest.json",
    "captions.parquet",
    "config.toml",
    "metrics.jsonl",
    "model.safetensors",
    ".lock",
    "report.html",
    "results.json",
    "trainer.json",
];

#[test]
fn prepare_train_and_demo_never_delete_a_file_they_did_not_write() {
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    let mut succeeded = [0; 3];
    for case in 0..12u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(case);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (data, run) = (root.join("data"), root.join("run"));
        let populated = case % 2 == 1;
        if populated {
            ok(prepare_shapes(&data, 20).output().unwrap());
            ok(train(&data, &run, &["--epochs", "1", "--checkpoint-every", "2"]).output().unwrap());
        }
        let mut placed = BTreeMap::new();
        for k in 0..rng.random_range(1..6) {
            let place = *PLACES.choose(&mut rng).unwrap();
            let ours = populated && (place.starts_with("data") || place.starts_with("run"));
            let name = if !ours && rng.random_bool(0.5) {
                OWN_NAMES.choose(&mut rng).unwrap().to_string()
            } else {
                format!("user-{k}-{:x}.txt", rng.random::<u32>())
            };
            let path = root.join(place).join(name);
            if !path.exists() && !path.parent().unwrap().is_file() {
                let text = format!("user file {k} of case {case}");
                write(&path, &text);
                placed.insert(path, text);
            }
        }
        let commands = [
            prepare_shapes(&data, 20).output().unwrap(),
            train(&data, &run, &["--epochs", "2", "--resume"]).output().unwrap(),
            demo_tiny(&data, &run).output().unwrap(),
        ];
        for (k, output) in commands.into_iter().enumerate() {
            if output.status.success() {
                succeeded[k] += 1;
            } else {
                let message = fails(output); // refused with a message, never a panic
                eprintln!("case {case} command {k}: {}", message.lines().last().unwrap_or_default());
            }
        }
        for (path, text) in &placed {
            let now = std::fs::read_to_string(path);
            assert_eq!(
                now.as_deref().ok(),
                Some(text.as_str()),
                "case {case}: {} lost or changed (placed: {placed:?})",
                path.display()
            );
        }
    }
    eprintln!("prepare-data, train, demo succeeded in {succeeded:?} of 12 cases");
    // Not vacuous: every command ran to the end in some cases (and was refused in others).
    assert!(succeeded.iter().all(|&n| (1..12).contains(&n)), "{succeeded:?}");
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 24);
    let run = dir.path().join("run");
    let mut child = train(&data, &run, &["--epochs", "500"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the first epoch is written, training is under way.
    let started = Instant::now();
    while !std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default().contains("train_loss") {
        assert!(started.elapsed() < Duration::from_secs(120), "training never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending SIGINT to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("checkpoint saved, continue with --resume") && out.contains("interrupted:"), "{out}");
    ok(train(&data, &run, &["--epochs", "2", "--resume"]).output().unwrap());
}
