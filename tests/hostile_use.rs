//! Nothing lost, nothing silently wrong, round two, from the command line: what a careless or
//! hostile user tries. Outputs (`--report`, `--attention-maps`, `vocab --out`, `features --out`)
//! never replace an input, a run's or a dataset's own files, or a file of another kind (and a
//! property test over random output paths shows no command changing a file it did not create);
//! endless inputs (`/dev/zero`, FIFOs, standard input) are bounded; numbers are checked where
//! they enter; a diverged (non-finite) model is never captioned, scored or exported; a cut JPEG,
//! a file name that is not UTF-8, a dangling link, images changed inside a prepared dataset are
//! named, never a panic or a silent result.

#[path = "support/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use cli::{fails, ok, prepare, prepare_shapes, snapshot, train, trained_run, xtask};
use rand::{Rng, SeedableRng};

/// Asserts that every file of `before` is in `after` with the same bytes (new files may appear).
fn nothing_changed(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let changed: Vec<&PathBuf> = before.keys().filter(|path| after.get(*path) != before.get(*path)).collect();
    assert!(changed.is_empty(), "{what}: changed {changed:?}");
}

/// Standard error of a command refused by its argument parser (status 2), naming `words`.
fn refused_by_parser(output: Output, words: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(words) && !stderr.contains("panicked"), "{words}: {stderr}");
}

/// `fails` and the message names `words`.
fn fails_saying(output: Output, words: &str) -> String {
    let message = fails(output);
    assert!(message.contains(words), "{words}: {message}");
    message
}

/// A command's output with `input` as its standard input.
fn with_stdin(command: &mut std::process::Command, input: &Path) -> Output {
    command.stdin(Stdio::from(std::fs::File::open(input).unwrap())).output().unwrap()
}

fn caption(run: &Path) -> std::process::Command {
    let mut command = xtask(&["caption", "--device", "cpu", "--checkpoint"]);
    command.arg(run);
    command
}

fn bleu(run: &Path, data: &Path) -> std::process::Command {
    let mut command = xtask(&["bleu", "--device", "cpu", "--checkpoint"]);
    command.arg(run).arg("--data").arg(data);
    command
}

#[test]
fn outputs_never_replace_inputs_or_what_runs_and_datasets_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (data, run) = trained_run(root);
    std::fs::write(root.join("notes.html"), "<!DOCTYPE html><p>my thesis notes</p>").unwrap();
    let out = root.join("eval");
    ok(bleu(&run, &data).arg("--out").arg(&out).output().unwrap());

    // bleu --report over what it reads, a run's and a dataset's own files, its own evaluation's
    // files, a file of another kind, a folder: each refused before any captioning, nothing changed.
    let before = snapshot(root);
    for (target, words) in [
        (run.join("best/model.safetensors"), "inside the checkpoint"),
        (run.join("config.toml"), "the run"),
        (data.join("captions.parquet"), "prepared dataset"),
        (data.join("images/report.html"), "prepared dataset"),
        (out.join("captions.jsonl"), "which this command writes"),
        (root.join("notes.html"), "is not an HTML report"),
        (root.to_path_buf(), "is a folder"),
    ] {
        let started = Instant::now();
        fails_saying(bleu(&run, &data).arg("--out").arg(&out).arg("--report").arg(&target).output().unwrap(), words);
        assert!(started.elapsed() < Duration::from_secs(20), "refused before the work");
    }
    nothing_changed(&before, &snapshot(root), "bleu --report");
    // A new file, then the same report again, and the run's own report.html: written.
    for target in [root.join("report.html"), root.join("report.html"), run.join("report.html")] {
        ok(bleu(&run, &data).arg("--out").arg(&out).arg("--report").arg(&target).output().unwrap());
        assert!(std::fs::read_to_string(&target).unwrap().contains("generator"));
    }
    // --report and --out without --checkpoint would write nothing: refused.
    let jsonl = out.join("captions.jsonl");
    let report = root.join("r.html");
    refused_by_parser(
        xtask(&["bleu", "--input"]).arg(&jsonl).arg("--report").arg(&report).output().unwrap(),
        "--checkpoint",
    );

    // The other single-file outputs: a tokenizer.json and a features file over what is not theirs.
    let weights = run.join("best/model.safetensors");
    let captions = root.join("captions.txt");
    std::fs::write(&captions, "image,caption\na.png,A dog runs .\n").unwrap();
    let vocab =
        |target: &Path| xtask(&["vocab", "--threshold", "1"]).arg(&captions).arg("--out").arg(target).output().unwrap();
    let features = |target: &Path| {
        let mut command = xtask(&["features", "--device", "cpu", "--size", "75", "--weights"]);
        command.arg(&weights).arg("--images").arg(data.join("images/shapes_00000.png")).arg("--out").arg(target);
        command.output().unwrap()
    };
    let before = snapshot(root);
    fails_saying(vocab(&run.join("best/tokenizer.json")), "inside the checkpoint");
    fails_saying(vocab(&data.join("tokenizer.json")), "prepared dataset");
    fails_saying(vocab(&root.join("notes.html")), "is not a Hugging Face tokenizer.json");
    fails_saying(features(&weights), "is the input");
    fails_saying(features(&data.join("captions.parquet")), "prepared dataset");
    fails_saying(features(&root.join("notes.html")), "is not a safetensors file of Inception features");
    nothing_changed(&before, &snapshot(root), "vocab and features");
    for _ in 0..2 {
        ok(vocab(&root.join("tokenizer.json")));
        // Where it ran and what it wrote, in words.
        let said = ok(features(&root.join("features.safetensors")));
        assert!(said.starts_with("1 images on the CPU: wrote pooled"), "{said}");
    }

    // Output folders (an export, an evaluation, a run, a dataset) inside what a dataset or a
    // checkpoint owns: refused before any work, nothing changed or created there.
    let before = snapshot(root);
    let mut export = xtask(&["export", "--checkpoint"]);
    fails_saying(export.arg(&run).arg("--pytorch").arg(data.join("export")).output().unwrap(), "prepared dataset");
    fails_saying(bleu(&run, &data).arg("--out").arg(data.join("eval-test")).output().unwrap(), "prepared dataset");
    fails_saying(train(&data, &data.join("run"), &["--epochs", "1"]).output().unwrap(), "prepared dataset");
    fails_saying(prepare_shapes(&run.join("best/data"), 8).output().unwrap(), "inside the checkpoint");
    fails_saying(train(&data, &run.join("checkpoints"), &["--epochs", "1"]).output().unwrap(), "own checkpoints");
    nothing_changed(&before, &snapshot(root), "output folders");
    for folder in [data.join("export"), data.join("eval-test"), data.join("run"), run.join("best/data")] {
        assert!(!folder.exists(), "{}", folder.display());
    }

    // The property: output paths drawn at random among the inputs, the run's and the dataset's
    // files, foreign files and new paths; whichever command writes there, no file it did not
    // create changes.
    // The files this test's own commands wrote at the top level are theirs to replace: left out.
    let written_here = ["report.html", "tokenizer.json", "features.safetensors"].map(|name| root.join(name));
    let mut pool: Vec<PathBuf> = snapshot(root).into_keys().map(|p| root.join(p)).collect();
    pool.retain(|p| !written_here.contains(p));
    pool.extend([root.join("new.html"), run.join("new.bin"), data.join("new.json"), run.join("best/new.x")]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
    for round in 0..12 {
        let target = pool[rng.random_range(0..pool.len())].clone();
        let command = rng.random_range(0..3);
        let before = snapshot(root);
        let existed = before.contains_key(target.strip_prefix(root).unwrap());
        let output = match command {
            0 => bleu(&run, &data).arg("--out").arg(&out).arg("--report").arg(&target).output().unwrap(),
            1 => vocab(&target),
            _ => features(&target),
        };
        let mut after = snapshot(root);
        if output.status.success() {
            // Written: only a new file, or the run's own report.html by the report.
            assert!(
                !existed || (command == 0 && target == run.join("report.html")),
                "round {round}: {}",
                target.display()
            );
            after.retain(|path, _| root.join(path) != target);
        }
        let mut before = before;
        if command == 0 && output.status.success() {
            // The evaluation's folder is the command's own (claimed as such), rewritten each time.
            for file in ["results.json", "captions.jsonl", "metrics.json"] {
                before.remove(&PathBuf::from("eval").join(file));
            }
        }
        nothing_changed(&before, &after, &format!("round {round}: command {command} to {}", target.display()));
    }
}

#[test]
fn attention_maps_go_only_where_nothing_is_read_or_owned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = prepare(root, 16);
    let run = root.join("run");
    let sizes = ["--decoder", "attention", "--attention-embed-dim", "8", "--attention-dim", "8", "--decoder-dim", "8"];
    ok(train(&data, &run, &[&["--epochs", "1"], &sizes[..]].concat()).output().unwrap());
    let images = root.join("photos");
    std::fs::create_dir_all(&images).unwrap();
    for name in ["shapes_00000.png", "shapes_00001.png"] {
        std::fs::copy(data.join("images").join(name), images.join(name)).unwrap();
    }
    let maps = |target: &Path| caption(&run).arg("--attention-maps").arg(target).arg(&images).output().unwrap();
    let before = snapshot(root);
    fails_saying(maps(&images), "lies in the input");
    fails_saying(maps(&images.join("maps")), "lies in the input");
    fails_saying(maps(&run.join("best")), "inside the checkpoint");
    fails_saying(maps(&data.join("images")), "prepared dataset");
    let mine = root.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("shapes_00001.attention.png"), "my own drawing").unwrap();
    fails_saying(maps(&mine), "is not an attention map");
    nothing_changed(&before, &snapshot(root), "--attention-maps");
    // A new folder, then the same maps again: written, and only the maps are there.
    let fresh = root.join("maps");
    ok(maps(&fresh));
    ok(maps(&fresh));
    let mut written: Vec<String> =
        std::fs::read_dir(&fresh).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, ["shapes_00000.attention.png", "shapes_00001.attention.png"]);
    // A beam as wide as the vocabulary is refused, not answered with an empty caption.
    let vocabulary = serde_json::from_slice::<serde_json::Value>(&std::fs::read(data.join("manifest.json")).unwrap())
        .unwrap()["vocabulary"]["size"]
        .as_u64()
        .unwrap();
    let wide = vocabulary.to_string();
    fails_saying(caption(&run).args(["--beam", &wide]).arg(&images).output().unwrap(), "vocabulary has");
}

#[test]
fn bad_numbers_endless_inputs_and_broken_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (data, run) = trained_run(root);
    let image = data.join("images/shapes_00000.png");

    bad_numbers(root, &data, &run, &image);
    endless_inputs(root, &data, &run, &image);
    awkward_file_names(root, &run, &image);
    broken_files(root, &data, &run, &image);
}

/// Numbers out of range, where they enter: each a named error.
fn bad_numbers(root: &Path, data: &Path, run: &Path, image: &Path) {
    // Numbers, where they enter.
    let with = |extra: &[&str]| caption(run).args(extra).arg(image).output().unwrap();
    refused_by_parser(with(&["--beam", "0"]), "a beam keeps 1 to 256");
    refused_by_parser(with(&["--beam", "1000000"]), "a beam keeps 1 to 256");
    refused_by_parser(with(&["--num-captions", "300"]), "1..=256");
    refused_by_parser(with(&["--sample", "0"]), "1..=256");
    fails_saying(with(&["--sample", "2", "--temperature", "0"]), "positive number");
    fails_saying(with(&["--sample", "2", "--temperature", "NaN"]), "positive number");
    fails_saying(with(&["--sample", "2", "--top-p", "1.5"]), "at most 1");
    refused_by_parser(with(&["--sample", "2", "--top-k", "0"]), "1..");
    refused_by_parser(with(&["--sample", "2", "--beam", "3"]), "cannot be used with");
    refused_by_parser(with(&["--temperature", "0.5"]), "--sample");
    refused_by_parser(with(&["--beam", "3", "--length-penalty", "NaN"]), "from 0 to 10");
    refused_by_parser(with(&["--beam", "3", "--length-penalty", "inf"]), "from 0 to 10");
    refused_by_parser(with(&["--max-length", "1"]), "--max-length");
    refused_by_parser(with(&["--captions", "captions.txt"]), "cannot be used with");
    fails_saying(with(&["--length-penalty", "1"]), "add --beam");
    fails_saying(with(&["--beam", "200"]), "vocabulary has");
    ok(with(&["--beam", "3", "--length-penalty", "1"]));
    // A caption cut at --max-length says so: `finished` in JSON, a note after text output.
    let record: serde_json::Value = serde_json::from_str(&ok(with(&["--max-length", "2", "--json"]))).unwrap();
    let text = with(&["--max-length", "2"]);
    let noted = String::from_utf8_lossy(&text.stderr).contains("cut there");
    assert_eq!(noted, record["finished"] == false, "{record} {text:?}");
    let other_run = root.join("run2");
    for (flag, value, words) in [
        ("--weight-decay", "NaN", "weight_decay"),
        ("--clip-grad-norm", "NaN", "clip_grad_norm"),
        ("--clip-grad-norm", "0", "clip_grad_norm"),
        ("--early-stopping", "0", "early_stopping"),
        ("--checkpoint-every", "0", "checkpoint_every"),
        ("--cnn-lr", "inf", "cnn_learning_rate"),
    ] {
        fails_saying(train(data, &other_run, &[flag, value]).output().unwrap(), words);
    }
    fails_saying(train(data, &other_run, &["--cache-float16"]).output().unwrap(), "cache_float16");
    let weights = run.join("best/model.safetensors");
    let mut batch0 = xtask(&["features", "--batch", "0", "--weights"]);
    refused_by_parser(
        batch0.arg(&weights).arg("--images").arg(image).arg("--out").arg(root.join("f")).output().unwrap(),
        "--batch",
    );
}

/// Endless inputs (/dev/zero, a FIFO, a line of 10 MB): each refused at once, by name.
fn endless_inputs(root: &Path, data: &Path, run: &Path, image: &Path) {
    let other_run = root.join("run2");
    // Endless inputs: /dev/zero and a FIFO through every command that reads a file, each
    // answered at once.
    let started = Instant::now();
    let zero = Path::new("/dev/zero");
    fails_saying(with_stdin(caption(run).arg("-"), zero), "line 1");
    fails_saying(xtask(&["tokenize", "/dev/zero"]).output().unwrap(), "not a regular file");
    fails_saying(with_stdin(&mut xtask(&["tokenize"]), zero), "line 1");
    fails_saying(xtask(&["bleu", "--input", "/dev/zero"]).output().unwrap(), "not a regular file");
    fails_saying(with_stdin(&mut xtask(&["bleu", "--input", "-"]), zero), "line 1");
    fails_saying(
        xtask(&["vocab", "/dev/zero", "--out"]).arg(root.join("t.json")).output().unwrap(),
        "not a regular file",
    );
    let annotations = root.join("annotations.json");
    std::fs::write(&annotations, "{}").unwrap();
    fails_saying(
        xtask(&["bleu", "--results", "/dev/zero", "--annotations"]).arg(&annotations).output().unwrap(),
        "not a regular file",
    );
    fails_saying(train(data, &other_run, &["--config", "/dev/zero"]).output().unwrap(), "not a regular file");
    let tensor_out = root.join("t.safetensors");
    let mut from_tensor = xtask(&["features", "--weights", "hub", "--input-tensor", "/dev/zero", "--out"]);
    fails_saying(from_tensor.arg(&tensor_out).output().unwrap(), "not a regular file");
    let mut with_weights = xtask(&["features", "--weights", "/dev/zero", "--images"]);
    fails_saying(with_weights.arg(image).arg("--out").arg(&tensor_out).output().unwrap(), "not a regular file");
    fails_saying(
        xtask(&["import-checkpoint", "/dev/zero", "--out"]).arg(&tensor_out).output().unwrap(),
        "not a regular file",
    );
    let mut original = xtask(&["caption", "--original", "/dev/zero", "--captions", "/dev/zero"]);
    fails_saying(original.arg(image).output().unwrap(), "not a regular file");
    let mut source = xtask(&["prepare-data", "--captions", "/dev/zero", "--images-dir"]);
    fails_saying(source.arg(root).arg("--out").arg(root.join("zero-data")).output().unwrap(), "not a regular file");
    let fifo = root.join("fifo.jsonl");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    fails_saying(xtask(&["bleu", "--input"]).arg(&fifo).output().unwrap(), "FIFO");
    fails_saying(xtask(&["tokenize"]).arg(&fifo).output().unwrap(), "not a regular file");
    fails_saying(train(data, &other_run, &["--config"]).arg(&fifo).output().unwrap(), "a FIFO");
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // A 10 MB line on standard input is refused by number, not echoed.
    let long = root.join("long.txt");
    std::fs::write(&long, "x".repeat(10 << 20)).unwrap();
    let message = fails_saying(with_stdin(caption(run).arg("-"), &long), "line 1");
    assert!(message.len() < 1000, "{} bytes", message.len());
}

/// File names a command must carry: not UTF-8, a tab, a dangling link, subfolders.
fn awkward_file_names(root: &Path, run: &Path, image: &Path) {
    // File names: not UTF-8 (JSON refuses it by name, the other images are captioned), a tab
    // in text output (escaped), a dangling link (named), subfolders (--recursive).
    let photos = root.join("photos");
    std::fs::create_dir_all(photos.join("more")).unwrap();
    std::fs::copy(image, photos.join("a\tb.png")).unwrap();
    std::fs::copy(image, photos.join("more/deep.png")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::copy(image, photos.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"))).unwrap();
    }
    let output = caption(run).arg("--json").arg(&photos).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let message = fails_saying(output, "not UTF-8");
    assert!(message.contains("1 of 2 images could not be read"), "{message}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let record: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert!(record["image"].as_str().unwrap().ends_with("a\tb.png"));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::remove_file(photos.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"))).unwrap();
    }
    let text = ok(caption(run).arg(&photos).output().unwrap());
    assert!(text.starts_with(&format!("{}\t", photos.join("a\\tb.png").display())), "{text}");
    assert_eq!(text.lines().count(), 1);
    let text = ok(caption(run).arg("-r").arg(&photos).output().unwrap());
    assert_eq!(text.lines().count(), 2, "{text}");
    std::fs::create_dir_all(root.join("nested/inner")).unwrap();
    std::fs::copy(image, root.join("nested/inner/x.png")).unwrap();
    fails_saying(caption(run).arg(root.join("nested")).output().unwrap(), "add --recursive");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("gone.png"), photos.join("dangling.png")).unwrap();
        let output = caption(run).arg(&photos).output().unwrap();
        fails_saying(output, "leads nowhere");
    }
}

/// Files broken in other ways: a JPEG cut short, a diverged model, a lost config.toml, swapped images.
fn broken_files(root: &Path, data: &Path, run: &Path, image: &Path) {
    let weights = run.join("best/model.safetensors");
    // A JPEG cut short is refused as PIL refuses it (and one whole is captioned).
    let jpeg = root.join("whole.jpg");
    image::open(image).unwrap().to_rgb8().save(&jpeg).unwrap();
    ok(caption(run).arg(&jpeg).output().unwrap());
    let bytes = std::fs::read(&jpeg).unwrap();
    let cut = root.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    fails_saying(caption(run).arg(&cut).output().unwrap(), "truncated");

    // A diverged model (a NaN weight) is never captioned, scored or exported.
    let nan = root.join("nan-checkpoint");
    std::fs::create_dir_all(&nan).unwrap();
    for file in ["tokenizer.json", "trainer.json"] {
        std::fs::copy(run.join("best").join(file), nan.join(file)).unwrap();
    }
    let bytes = std::fs::read(&weights).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    // Every tensor is written into this one file: it names no frozen weights file.
    metadata.remove(caption_infer::frozen_weights::FROZEN_WEIGHTS_METADATA_KEY);
    let mut tensors = caption_infer::checkpoint_files::read_model_file(&weights).unwrap().tensors;
    let name = "decoderRNN.linear.weight";
    let shape = tensors[name].dims().to_vec();
    let mut values = vec![0.1f32; shape.iter().product()];
    values[3] = f32::NAN;
    tensors.insert(name.into(), candle_core::Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap());
    caption_infer::checkpoint_files::write_model_file(&nan.join("model.safetensors"), &tensors, metadata).unwrap();
    fails_saying(caption(&nan).arg(image).output().unwrap(), name);
    fails_saying(bleu(&nan, data).arg("--out").arg(root.join("nan-eval")).output().unwrap(), "diverged");
    fails_saying(
        xtask(&["export", "--checkpoint"]).arg(&nan).arg("--pytorch").arg(root.join("x")).output().unwrap(),
        name,
    );
    assert!(!root.join("nan-eval").exists() && !root.join("x").exists());

    // Resumed after its config.toml was lost: the run's own settings (from its checkpoint), not
    // the command line's defaults, so the bare command goes on.
    std::fs::remove_file(run.join("config.toml")).unwrap();
    let mut resume = xtask(&["train", "--resume", "--epochs", "2", "--device", "cpu", "-q", "--data"]);
    ok(resume.arg(data).arg("--run").arg(run).output().unwrap());
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("embed_size = 24") && config.contains("epochs = 2"), "{config}");

    // Two images swapped inside the prepared dataset: training and scoring refuse, naming one.
    let (a, b) = (data.join("images/shapes_00003.png"), data.join("images/shapes_00004.png"));
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &bytes_b).unwrap();
    std::fs::write(&b, &bytes_a).unwrap();
    fails_saying(train(data, &root.join("run3"), &["--epochs", "1"]).output().unwrap(), "prepare it again");
    fails_saying(bleu(run, data).arg("--out").arg(root.join("e3")).output().unwrap(), "shapes_0000");
}

#[test]
fn messages_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let image = root.join("photo.png");
    image::RgbImage::from_pixel(40, 40, image::Rgb([10, 200, 30])).save(&image).unwrap();
    let caption_with = |checkpoint: &Path| caption(checkpoint).arg(&image).output().unwrap();

    // What is not there is named as missing.
    fails_saying(caption_with(&root.join("no-run")), "no such file or folder");
    let mut missing_data = xtask(&["bleu", "--checkpoint"]);
    missing_data.arg(root.join("no-run")).arg("--data").arg(root.join("no-data"));
    fails_saying(missing_data.output().unwrap(), "no-data does not exist");
    let mut no_data = xtask(&["train", "--device", "cpu", "--data"]);
    fails_saying(
        no_data.arg(root.join("no-data")).arg("--run").arg(root.join("r")).output().unwrap(),
        "does not exist",
    );
    let mut images_dir = xtask(&["prepare-data", "--captions"]);
    let captions = root.join("captions.txt");
    std::fs::write(&captions, "image,caption\nphoto.png,A green square .\n").unwrap();
    images_dir.arg(&captions).arg("--images-dir").arg(&image).arg("--out").arg(root.join("d"));
    fails_saying(images_dir.output().unwrap(), "is a file, not a folder of images");

    // A safetensors file that is text, or cut short, says so; the original's checkpoint and its
    // imported weights point to --original.
    let text = root.join("model.safetensors");
    std::fs::write(&text, "these are my notes, not weights\n").unwrap();
    fails_saying(caption_with(&text), "not a safetensors file: it is text");
    let tensor = candle_core::Tensor::zeros((4, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let weights = std::collections::HashMap::from([("decoderRNN.embed.weight".to_string(), tensor)]);
    let imported = root.join("imported.safetensors");
    candle_core::safetensors::save(&weights, &imported).unwrap();
    fails_saying(caption_with(&imported), "--original FILE --captions CAPTIONS");
    let bytes = std::fs::read(&imported).unwrap();
    let cut = root.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    fails_saying(caption_with(&cut), "cut short");
    let original = root.join("my_checkpoint.pth.tar");
    std::fs::write(&original, b"PK\x03\x04 a zip of pickles").unwrap();
    fails_saying(caption_with(&original), "give it with `--original FILE --captions CAPTIONS`");

    // prepare-data: a JPEG cut short is left out and listed with the reason, as a corrupt PNG is.
    let photos = root.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let mut lines = String::from("image,caption\n");
    for k in 0..12 {
        let name = format!("p{k}.jpg");
        image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5 + k) as u8, 90]))
            .save(photos.join(&name))
            .unwrap();
        lines.push_str(&format!("{name},A picture number {k} .\n"));
    }
    let whole = std::fs::read(photos.join("p3.jpg")).unwrap();
    std::fs::write(photos.join("p3.jpg"), &whole[..whole.len() / 2]).unwrap();
    let listed = root.join("listed.txt");
    std::fs::write(&listed, lines).unwrap();
    let dataset = root.join("prepared");
    let mut prepare = xtask(&["prepare-data", "-q", "--threshold", "1", "--captions"]);
    ok(prepare.arg(&listed).arg("--images-dir").arg(&photos).arg("--out").arg(&dataset).output().unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dataset.join("manifest.json")).unwrap()).unwrap();
    let skipped = manifest["skipped_images"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["image"], "p3.jpg");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("truncated"), "{skipped:?}");

    // tokenize: a byte order mark is no part of the first token.
    let bom = root.join("bom.txt");
    std::fs::write(&bom, "\u{feff}A dog.\nA cat\r\n").unwrap();
    assert_eq!(ok(xtask(&["tokenize"]).arg(&bom).output().unwrap()), "[\"A\",\"dog\",\".\"]\n[\"A\",\"cat\"]\n");
}
