//! Dynamic batching: requests wait at most `max_wait` to share one run of the encoder over up to
//! `max_batch` images; requests whose options decode alike are decoded in one call. One thread
//! owns the model; the queue in front of it is bounded (a full queue is the handlers' 503).

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use base64::Engine;
use candle_core::Tensor;
use caption_infer::{Captioner, Generated, InferError};
use image::RgbImage;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use caption_infer::{Method, Plan};

/// One request's images and what to do with them.
pub(crate) struct Job {
    pub images: Vec<RgbImage>,
    pub plan: Plan,
    pub queued_at: Instant,
    pub reply: oneshot::Sender<Result<Answer, String>>,
}

/// What the batcher answers a job.
pub(crate) struct Answer {
    /// Per image, its captions (best first, or in the order drawn).
    pub captions: Vec<Vec<Generated>>,
    /// Per image, its first caption's attention map (PNG), when asked.
    pub maps: Vec<Option<String>>,
    /// Images in the batch the job ran in.
    pub batch_images: usize,
    /// Time in the queue, and in the model.
    pub queue_ms: f64,
    pub compute_ms: f64,
}

/// The handlers' end of the queue.
#[derive(Clone)]
pub(crate) struct Batcher {
    sender: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

/// Why a job was not queued.
pub(crate) enum Refused {
    /// The queue is full.
    Full,
    /// The model's thread has stopped.
    Stopped,
}

impl Batcher {
    /// Starts the model's thread with room for `queue` waiting requests.
    pub(crate) fn start(
        captioner: Captioner,
        (max_batch, max_wait): (usize, Duration),
        queue: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (sender, receiver) = sync_channel(queue);
        let thread_metrics = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("caption-model".into())
            .spawn(move || run(captioner, &receiver, (max_batch, max_wait), &thread_metrics))
            .expect("a thread can be started");
        Self { sender, metrics }
    }

    /// Queues a job, or says why not (without waiting).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        let images = job.images.len();
        self.metrics.queued_images.fetch_add(images, Ordering::Relaxed);
        self.sender.try_send(job).map_err(|e| {
            self.metrics.queued_images.fetch_sub(images, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => Refused::Full,
                TrySendError::Disconnected(_) => Refused::Stopped,
            }
        })
    }
}

/// The model's thread: gathers jobs into batches until every sender is gone.
fn run(
    mut captioner: Captioner,
    receiver: &Receiver<Job>,
    (max_batch, max_wait): (usize, Duration),
    metrics: &Metrics,
) {
    while let Ok(first) = receiver.recv() {
        let deadline = Instant::now() + max_wait;
        let mut images = first.images.len();
        let mut jobs = vec![first];
        while images < max_batch {
            match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => {
                    images += job.images.len();
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        metrics.queued_images.fetch_sub(images, Ordering::Relaxed);
        // A client that went away is not waited for.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let images: usize = jobs.iter().map(|job| job.images.len()).sum();
        metrics.batch(images);
        let started = Instant::now();
        // A panic in the model answers this batch's requests with an error; the next batches run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(&mut captioner, &mut jobs)));
        let compute_ms = started.elapsed().as_secs_f64() * 1e3;
        let answers: Vec<Result<JobAnswer, String>> = match outcome {
            Ok(Ok(answers)) => answers.into_iter().map(Ok).collect(),
            Ok(Err(error)) => jobs.iter().map(|_| Err(error.to_string())).collect(),
            Err(_) => jobs
                .iter()
                .map(|_| Err("the model failed on this batch (a panic); the server goes on".into()))
                .collect(),
        };
        for (job, answer) in jobs.into_iter().zip(answers) {
            let queue_ms = started.duration_since(job.queued_at).as_secs_f64() * 1e3;
            let answer =
                answer.map(|(captions, maps)| Answer { captions, maps, batch_images: images, queue_ms, compute_ms });
            // The client may have gone meanwhile: nothing to answer then.
            let _ = job.reply.send(answer);
        }
    }
}

/// A job's images' captions and maps.
type JobAnswer = (Vec<Vec<Generated>>, Vec<Option<String>>);

/// Per job, its answer.
type JobAnswers = Vec<JobAnswer>;

/// Encodes every job's images in one pass (in the captioner's batches), then decodes each group
/// of jobs whose plans decode alike in one call. The images move out of the jobs into one list.
fn run_batch(captioner: &mut Captioner, jobs: &mut [Job]) -> Result<JobAnswers, InferError> {
    let counts: Vec<usize> = jobs.iter().map(|job| job.images.len()).collect();
    let all: Vec<RgbImage> = jobs.iter_mut().flat_map(|job| std::mem::take(&mut job.images)).collect();
    let mut parts = Vec::new();
    for chunk in all.chunks(captioner.batch_size.max(1)) {
        parts.push(captioner.encode_images(chunk)?);
    }
    let encoded = Tensor::cat(&parts, 0)?;
    let mut first_rows = Vec::with_capacity(jobs.len());
    let mut row = 0;
    for count in &counts {
        first_rows.push(row);
        row += count;
    }
    let mut answers: Vec<Option<Vec<Vec<Generated>>>> = vec![None; jobs.len()];
    for lead in 0..jobs.len() {
        if answers[lead].is_some() {
            continue;
        }
        let group: Vec<usize> = (lead..jobs.len())
            .filter(|&j| answers[j].is_none() && jobs[j].plan.decodes_with(&jobs[lead].plan))
            .collect();
        let rows: Vec<u32> =
            group.iter().flat_map(|&j| (first_rows[j]..first_rows[j] + counts[j]).map(|r| r as u32)).collect();
        let selected = if rows.len() == all.len() {
            encoded.clone()
        } else {
            encoded.index_select(&Tensor::new(rows.as_slice(), encoded.device())?, 0)?
        };
        captioner.max_length = jobs[lead].plan.max_length;
        // Sampled rows draw from their request's seed + the image's place in the request.
        let seeds: Vec<u64> = group
            .iter()
            .flat_map(|&j| {
                let seed = match jobs[j].plan.method {
                    Method::Sample { seed, .. } => seed,
                    _ => 0,
                };
                (0..counts[j] as u64).map(move |i| seed.wrapping_add(i))
            })
            .collect();
        let mut decoded = captioner.decode_with(&selected, jobs[lead].plan.method, &seeds)?.into_iter();
        for &j in &group {
            answers[j] = Some(decoded.by_ref().take(counts[j]).collect());
        }
    }
    jobs.iter()
        .zip(answers)
        .zip(first_rows.iter().zip(&counts))
        .map(|((job, captions), (&first, &count))| {
            let captions = captions.expect("every job is in a group");
            let maps = if job.plan.attention_maps {
                all[first..first + count]
                    .iter()
                    .zip(&captions)
                    .map(|(image, captions)| attention_png(image, &captions[0]))
                    .collect::<Result<_, _>>()?
            } else {
                vec![None; count]
            };
            Ok((captions, maps))
        })
        .collect()
}

/// An image's attention strip for `caption`, as a base64 PNG (none for a caption without words).
fn attention_png(image: &RgbImage, caption: &Generated) -> Result<Option<String>, InferError> {
    let Some(grid) = caption.grid.filter(|_| !caption.words.is_empty()) else { return Ok(None) };
    let strip = caption_infer::attention_map::attention_strip(image, &caption.words, &caption.alphas, grid)?;
    let mut png = Vec::new();
    strip
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| InferError::Evaluation(format!("attention map: {e}")))?;
    Ok(Some(base64::engine::general_purpose::STANDARD.encode(png)))
}
