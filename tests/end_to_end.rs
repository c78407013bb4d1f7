//! The pipeline from the command line on a tiny generated dataset: prepare → train → bleu (with
//! the HTML report) → caption → resume, and a run killed with SIGKILL again and again that still
//! ends bit-identical to an uninterrupted one. The report is opened in headless Chromium.

mod browser;
#[path = "support/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{Device, Tensor};
use cli::{ok, prepare, train, xtask};

fn newest_weights(run: &Path) -> HashMap<String, Tensor> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    steps.sort();
    candle_core::safetensors::load(steps.last().unwrap().join("model.safetensors"), &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn prepare_train_score_caption_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 40);
    let run = dir.path().join("run");
    let out = ok(train(&data, &run, &["--epochs", "2", "--allow-tf32"]).output().unwrap());
    assert!(out.contains("epoch 2/2") && out.contains("BLEU-4"), "{out}");
    // TF32 is a GPU's; on the CPU the run says it stays strict float32.
    assert!(out.contains("TF32 allowed, but this run is on the CPU"), "{out}");
    // The first epoch's line estimates the rest of the run; rates read as people write them.
    let first = out.lines().find(|l| l.starts_with("epoch 1/2:")).unwrap();
    assert!(first.contains(" left") && first.contains(" samples/s"), "{first}");
    assert!(run.join("best/model.safetensors").is_file() && run.join("config.toml").is_file());
    assert!(run.join("loss.png").is_file() && run.join("bleu.png").is_file());

    scores_with_the_checkpoint(dir.path(), &data, &run);
    captions_with_the_checkpoint(&data, &run);
    exports_for_pytorch(dir.path(), &data, &run);

    // Resuming with more epochs continues where the run stopped.
    let out = ok(train(&data, &run, &["--epochs", "3", "--resume"]).output().unwrap());
    assert!(out.contains("resuming from") && out.contains("epoch 3/3") && !out.contains("epoch 1/3"), "{out}");
    assert!(!out.contains("TF32"), "TF32 is asked for each time: {out}");
    // Without --resume, a run folder with checkpoints is refused.
    let output = train(&data, &run, &["--epochs", "3"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--resume"));

    // Self-critical training from the run: the rewards logged, CIDEr-D validated.
    let scst = dir.path().join("scst");
    let out = ok(train(&data, &scst, &["--from", run.to_str().unwrap(), "--epochs", "1", "--samples", "2"])
        .output()
        .unwrap());
    assert!(out.contains("self-critical training from") && out.contains("CIDEr-D"), "{out}");
    let metrics = std::fs::read_to_string(scst.join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().any(|line| line.contains("\"reward\"") && line.contains("\"greedy_cider\"")));
}

/// `bleu --checkpoint` on the trained run: the scores, the files, the report (in a browser), and
/// nltk's arithmetic equal to the file path's.
fn scores_with_the_checkpoint(dir: &Path, data: &Path, run: &Path) {
    let report = dir.join("report.html");
    let out = ok(xtask(&["bleu", "--checkpoint"])
        .arg(run)
        .arg("--data")
        .arg(data)
        .args(["--split", "validation", "--device", "cpu", "--json", "--report"])
        .arg(&report)
        .output()
        .unwrap());
    let metrics: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    for key in ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l"] {
        let value = metrics[key].as_f64().unwrap();
        assert!(value.is_finite() && value >= 0.0, "{key} = {value}");
    }
    assert!(metrics["bleu_1"].as_f64().unwrap() <= 1.0);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval-validation/results.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<table id=\"metrics\">") && html.contains("\"thumb\":\"/9j/"));
    assert_eq!(html.matches("\"thumb\":").count(), results.as_array().unwrap().len());
    // The page renders in a browser: every thumbnail decoded and drawn, the metric table laid out.
    browser::check_report(&report, results.as_array().unwrap().len(), 2, 7);
    // The check can fail: the same page with its thumbnails' bytes damaged does not pass.
    let damaged = dir.join("damaged.html");
    std::fs::write(&damaged, html.replace("\"thumb\":\"/9j/", "\"thumb\":\"AAAA")).unwrap();
    let caught = std::panic::catch_unwind(|| browser::check_report(&damaged, results.as_array().unwrap().len(), 2, 7));
    assert!(caught.is_err(), "a page with undecodable thumbnails passed the browser check");

    // --compat with a checkpoint: nltk's arithmetic and smoothing, the same numbers the file
    // path gives for the captions it wrote.
    let nltk_dir = dir.join("nltk");
    let out = ok(xtask(&["bleu", "--checkpoint"])
        .arg(run)
        .arg("--data")
        .arg(data)
        .args([
            "--split",
            "validation",
            "--device",
            "cpu",
            "--json",
            "--compat",
            "nltk",
            "--smoothing",
            "method1",
            "--out",
        ])
        .arg(&nltk_dir)
        .output()
        .unwrap());
    let nltk: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(nltk_dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((written["compat"].as_str(), written["smoothing"].as_str()), (Some("nltk"), Some("method1")));
    let mut jsonl = String::new();
    for line in std::fs::read_to_string(nltk_dir.join("captions.jsonl")).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let record = serde_json::json!({"id": v["image"], "hypothesis": v["caption"], "references": v["references"]});
        jsonl.push_str(&format!("{record}\n"));
    }
    std::fs::write(dir.join("nltk.jsonl"), jsonl).unwrap();
    let out =
        ok(xtask(&["bleu", "--tokenize", "spacy", "--compat", "nltk", "--smoothing", "method1", "--json", "--input"])
            .arg(dir.join("nltk.jsonl"))
            .output()
            .unwrap());
    let from_file: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(nltk["bleu_1"].as_f64().unwrap() > 0.0, "{nltk}");
    for n in 1..=4 {
        let key = format!("bleu_{n}");
        assert_eq!(nltk[&key].as_f64(), from_file[&key].as_f64(), "{key}: {nltk} vs {from_file}");
    }
}

/// `caption` with the trained run: greedy, beam and n-best, paths from standard input.
fn captions_with_the_checkpoint(data: &Path, run: &Path) {
    // Captions use the vocabulary of the dataset.
    let vocabulary = caption_text::Vocabulary::load(&data.join("tokenizer.json")).unwrap();
    let images = data.join("images");
    let out = ok(xtask(&["caption", "--checkpoint"])
        .arg(run)
        .arg(&images)
        .args(["--device", "cpu", "--beam", "2", "--tokens"])
        .output()
        .unwrap());
    assert_eq!(out.lines().count(), 40);
    for line in out.lines() {
        let (_, caption) = line.split_once('\t').unwrap();
        assert!(caption.split(' ').filter(|w| !w.is_empty()).all(|w| vocabulary.id(w).is_some()), "{caption:?}");
    }

    // The 3 best captions, paths from standard input: best first, the first is --beam 3's, each
    // printed as a person writes its tokens.
    let listed: Vec<_> = (0..5).map(|i| images.join(format!("shapes_{i:05}.png"))).collect();
    let paths = listed.iter().map(|p| format!("{}\n", p.display())).collect::<String>();
    let mut n_best = xtask(&["caption", "--device", "cpu", "--json", "--beam", "3", "--num-captions", "3", "-"]);
    let child =
        n_best.arg("--checkpoint").arg(run).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = child.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), paths.as_bytes()).unwrap();
    let n_best = ok(child.wait_with_output().unwrap());
    let beam = ok(xtask(&["caption", "--device", "cpu", "--json", "--beam", "3", "--checkpoint"])
        .arg(run)
        .args(&listed)
        .output()
        .unwrap());
    assert_eq!(n_best.lines().count(), 5);
    for (ranked, single) in n_best.lines().zip(beam.lines()) {
        let (ranked, single): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(ranked).unwrap(), serde_json::from_str(single).unwrap());
        assert_eq!(ranked["image"], single["image"]);
        let captions = ranked["captions"].as_array().unwrap();
        assert_eq!(captions.len(), 3, "{ranked}");
        assert_eq!(captions[0]["tokens"], single["tokens"], "{ranked} vs {single}");
        let log_probs: Vec<f64> = captions.iter().map(|c| c["log_prob"].as_f64().unwrap()).collect();
        let finished = captions.iter().all(|c| c["finished"] == true);
        assert!(!finished || log_probs.windows(2).all(|w| w[0] >= w[1]), "{log_probs:?}");
        for caption in captions {
            let tokens: Vec<String> = serde_json::from_value(caption["tokens"].clone()).unwrap();
            assert_eq!(caption["caption"], caption_text::detokenize(&tokens).as_str());
        }
    }

    // Sampled captions: four per image, the same with the same seed whatever else is captioned
    // with them (image i of the list draws from --seed + i), others with another seed.
    let sampled = |seed: &str, images: &[std::path::PathBuf]| {
        let mut command =
            xtask(&["caption", "--device", "cpu", "--sample", "4", "--temperature", "1.5", "--seed", seed]);
        ok(command.arg("--checkpoint").arg(run).args(images).output().unwrap())
    };
    let all = sampled("7", &listed);
    assert_eq!(all.lines().count(), 20);
    assert_eq!(sampled("7", &listed), all, "the same seed, the same captions");
    let third_alone = sampled("9", &listed[2..3]);
    let third_in_all: Vec<&str> = all.lines().skip(8).take(4).collect();
    assert_eq!(third_alone.lines().collect::<Vec<_>>(), third_in_all, "seed 7 + 2 is the third image's");
    assert_ne!(sampled("8", &listed), all);
    for line in all.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert!(fields[2].parse::<f64>().unwrap() < 0.0, "{line}");
    }
}

/// `export --pytorch`: the files, the configuration, the counters, the same captions; a second
/// export replaces the first, a folder with someone else's file is refused.
fn exports_for_pytorch(dir: &Path, data: &Path, run: &Path) {
    let vocabulary = caption_text::Vocabulary::load(&data.join("tokenizer.json")).unwrap();
    let images = data.join("images");
    // Export for PyTorch: the files, the configuration in config.json and in the model file's
    // metadata, BatchNorm counters for a strict load; the export captions here as the run does;
    // a second export replaces the first, a folder with someone else's file is refused.
    let export = dir.join("export");
    let out = ok(xtask(&["export", "--checkpoint"]).arg(run).arg("--pytorch").arg(&export).output().unwrap());
    assert!(out.contains("caption in PyTorch: python"), "{out}");
    for file in ["model.safetensors", "config.json", "vocab.json", "tokenizer.json", "caption.py"] {
        assert!(export.join(file).is_file(), "{file} missing");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architecture"], "CNNtoRNN");
    assert_eq!(config["vocab_size"].as_u64().unwrap() as usize, vocabulary.len());
    assert_eq!(config["specials"]["<EOS>"], 2);
    let words: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(export.join("vocab.json")).unwrap()).unwrap();
    assert_eq!(words, vocabulary.words());
    let exported = caption_infer::checkpoint_files::read_model_file(&export.join("model.safetensors")).unwrap();
    let checkpoint = caption_infer::checkpoint_files::read_model_file(&run.join("best/model.safetensors")).unwrap();
    let stored = checkpoint.config.expect("checkpoints store their configuration");
    assert_eq!(exported.config.as_ref(), Some(&stored));
    assert_eq!(serde_json::to_value(&stored).unwrap()["embed_size"], config["embed_size"]);
    let means = exported.tensors.keys().filter(|k| k.ends_with(".running_mean")).count();
    let counters = exported.tensors.keys().filter(|k| k.ends_with(".num_batches_tracked")).count();
    assert!(means > 90 && counters == means, "{means} BatchNorm layers, {counters} counters");
    let caption_with = |checkpoint: &Path| {
        ok(xtask(&["caption", "--device", "cpu", "--tokens", "--checkpoint"])
            .arg(checkpoint)
            .arg(&images)
            .output()
            .unwrap())
    };
    let from_run = caption_with(run);
    assert_eq!(caption_with(&export), from_run);
    assert_eq!(caption_with(&export.join("model.safetensors")), from_run);
    ok(xtask(&["export", "--checkpoint"]).arg(run).arg("--pytorch").arg(&export).output().unwrap());
    std::fs::write(export.join("notes.txt"), "mine").unwrap();
    let refused = xtask(&["export", "--checkpoint"]).arg(run).arg("--pytorch").arg(&export).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("notes.txt"));
    assert_eq!(std::fs::read_to_string(export.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn a_run_killed_again_and_again_ends_identical_to_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 24);
    let settings = ["--epochs", "6", "--checkpoint-every", "2", "--no-validation-bleu", "--seed", "5"];
    let whole = dir.path().join("whole");
    let started = std::time::Instant::now();
    ok(train(&data, &whole, &settings).output().unwrap());
    let run_time = started.elapsed().as_millis() as u64;

    let killed = dir.path().join("killed");
    let newest_step = || {
        std::fs::read_dir(killed.join("checkpoints"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("step-")?.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    // The first kill lands in the first process's start (features being computed); each later one
    // a few milliseconds after its process wrote a new checkpoint, so that the kills fall on
    // training steps and checkpoint writes whatever this machine's speed, and every process but
    // the last is killed before the run ends (6 epochs × 2 steps, a checkpoint every 2 steps).
    let mut killed_alive = 0;
    for (round, delay) in [0u64, 0, 15, 40, 5, 25].into_iter().enumerate() {
        let at_start = newest_step();
        let mut child = train(&data, &killed, &settings)
            .arg("--resume")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if round == 0 {
            std::thread::sleep(Duration::from_millis(run_time * 2 / 5));
        } else {
            let waiting = std::time::Instant::now();
            while newest_step() <= at_start
                && child.try_wait().unwrap().is_none()
                && waiting.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(delay));
        }
        if child.try_wait().unwrap().is_none() {
            killed_alive += 1;
        }
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        println!("round {round}: killed at step {} (newest checkpoint)", newest_step());
    }
    println!("{killed_alive} of 6 kills hit a running process (an uninterrupted run: {run_time} ms)");
    assert!(killed_alive >= 4, "only {killed_alive} of 6 kills hit a running process");
    assert!(newest_step() >= 6, "the kills left the run at step {}: they hit too early", newest_step());
    ok(train(&data, &killed, &settings).arg("--resume").output().unwrap());
    let (a, b) = (newest_weights(&whole), newest_weights(&killed));
    assert_eq!(a.len(), b.len());
    for (name, tensor) in &a {
        assert!(bits(tensor) == bits(&b[name]), "{name} differs after the kills");
    }
}

#[test]
fn demo_at_tiny_sizes_writes_everything_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("demo.html");
    let out = ok(xtask(&["demo", "--images", "40", "--epochs", "1", "--image-size", "75", "--embed-size", "16"])
        .args(["--hidden-size", "16", "--device", "cpu", "--seed", "3", "--train-seed", "5", "--json", "--data"])
        .arg(dir.path().join("data"))
        .arg("--run")
        .arg(dir.path().join("run"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap());
    // The images come from --seed, the weights and the training from --train-seed.
    let manifest = std::fs::read_to_string(dir.path().join("data/manifest.json")).unwrap();
    assert!(manifest.contains("seed 3") && !manifest.contains("seed 5"), "{manifest}");
    let config = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(config.lines().any(|line| line == "seed = 5"), "{config}");
    let summary: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    for key in ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "baseline_bleu_4", "attribute_accuracy"] {
        let value = summary[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&value), "{key} = {value}");
    }
    assert!(!summary["baseline_caption"].as_str().unwrap().is_empty());
    for key in ["report", "results", "captions", "metrics", "checkpoint", "run", "dataset"] {
        let path = PathBuf::from(summary[key].as_str().unwrap());
        assert!(path.exists(), "{key}: {} missing", path.display());
    }
    assert_eq!(PathBuf::from(summary["report"].as_str().unwrap()), report);
    let test_images = summary["test_images"].as_u64().unwrap() as usize;
    browser::check_report(&report, test_images, 2, 9);
}

#[test]
fn the_attention_demo_compares_both_decoders_and_its_model_draws_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    let out = ok(xtask(&["demo", "--decoder", "attention", "--images", "40", "--epochs", "1"])
        .args(["--attention-epochs", "1", "--image-size", "107", "--embed-size", "16", "--hidden-size", "16"])
        .args(["--device", "cpu", "--json", "--data"])
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .output()
        .unwrap());
    assert!(out.contains("side by side") && out.contains("object accuracy"), "{out}");
    let summary: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(summary["decoder"], "attention");
    for value in [&summary["bleu_4"], &summary["object_accuracy"], &summary["lstm"]["bleu"][3]] {
        assert!((0.0..=1.0).contains(&value.as_f64().unwrap()), "{summary}");
    }
    let lstm_run = dir.path().join("run-lstm");
    assert_eq!(PathBuf::from(summary["lstm"]["run"].as_str().unwrap()), lstm_run);
    assert!(run.join("best").is_dir() && lstm_run.join("best").is_dir());

    // The attention model's maps: one PNG per image, a panel per word.
    let images: Vec<PathBuf> = (0..2).map(|i| data.join("images").join(format!("shapes_{i:05}.png"))).collect();
    let maps = dir.path().join("maps");
    let captions = ok(xtask(&["caption", "--device", "cpu", "--tokens", "--attention-maps"])
        .arg(&maps)
        .arg("--checkpoint")
        .arg(&run)
        .args(&images)
        .output()
        .unwrap());
    for (line, image) in captions.lines().zip(&images) {
        let words = line.split('\t').nth(1).unwrap().split_whitespace().count();
        let name = format!("{}.attention.png", image.file_stem().unwrap().to_string_lossy());
        let map = image::open(maps.join(name)).unwrap();
        let panels = words.max(1) as u32;
        assert_eq!(map.width(), panels * 160 + (panels - 1) * 6, "{line}");
    }
    let json = ok(xtask(&["caption", "--device", "cpu", "--json", "--beam", "2", "--attention-maps"])
        .arg(dir.path().join("maps-json"))
        .arg("--checkpoint")
        .arg(&run)
        .arg(&images[1])
        .output()
        .unwrap());
    let object: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let map = PathBuf::from(object["attention_map"].as_str().unwrap());
    assert_eq!(map, dir.path().join("maps-json").join("shapes_00001.attention.png"));
    assert!(map.is_file());
    // The LSTM model has no weights to draw, and the export writes the original's model only.
    let refused = cli::fails(
        xtask(&["caption", "--device", "cpu", "--attention-maps"])
            .arg(&maps)
            .arg("--checkpoint")
            .arg(&lstm_run)
            .arg(&images[0])
            .output()
            .unwrap(),
    );
    assert!(refused.contains("needs an attention model (ShowAttendTell)") && refused.contains("CNNtoRNN"), "{refused}");
    let refused = cli::fails(
        xtask(&["export", "--checkpoint"]).arg(&run).arg("--pytorch").arg(dir.path().join("export")).output().unwrap(),
    );
    assert!(refused.contains("ShowAttendTell") && refused.contains("CNNtoRNN"), "{refused}");
    assert!(!dir.path().join("export").exists(), "nothing written");
}
