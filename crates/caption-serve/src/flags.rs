//! The server's command line (feature `cli`): what `cargo xtask serve` takes — the model, the
//! address, each limit of [`ServeConfig`] with its default — and running it until a signal.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use caption_infer::Captioner;

use crate::ServeConfig;

/// The model to serve, `--host`, `--port` and every [`ServeConfig`] setting as a flag.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Endpoints: POST /v1/captions (an image as the body, or the files of a multipart form; \
options in the query: beam, length_penalty, num_captions, max_length, sample, temperature, top_k, top_p, seed, \
attention_maps), GET / (a page to try it), /healthz, /readyz, /metrics (Prometheus), /v1/model.

Examples (after `cargo xtask demo`):
  cargo xtask serve --checkpoint runs/demo
  curl --data-binary @datasets/shapes/images/shapes_00001.png -H 'Content-Type: image/png' \\
       'http://127.0.0.1:8080/v1/captions?beam=3'
  curl -F image=@a.jpg -F image=@b.jpg 'http://127.0.0.1:8080/v1/captions?num_captions=3'
  cargo xtask serve --original my_checkpoint.pth.tar --captions captions.txt --port 9000")]
pub struct ServeFlags {
    /// A run, checkpoint or export folder to serve
    #[arg(long, value_name = "RUN_OR_EXPORT", required_unless_present = "original", conflicts_with = "original")]
    pub checkpoint: Option<PathBuf>,
    /// The PyTorch original's checkpoint (my_checkpoint.pth.tar, or safetensors with its names)
    #[arg(long, value_name = "FILE", requires = "captions")]
    pub original: Option<PathBuf>,
    /// With --original: the captions file it was trained on (its vocabulary)
    #[arg(long, value_name = "FILE", requires = "original")]
    pub captions: Option<PathBuf>,
    /// With --original: its vocabulary's frequency threshold
    #[arg(long, default_value_t = 5)]
    pub threshold: usize,
    /// `auto`, `cpu`, `cuda` or `cuda:N`
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Address to listen on (loopback unless told otherwise: 0.0.0.0 serves every interface)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed when bound)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Images one batch gathers at most
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_batch: u32,
    /// Milliseconds the first request of a batch waits for others
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// Requests that may wait for the model; beyond, 503 with Retry-After
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue: u32,
    /// Captioning requests answered at once; beyond, 503
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,
    /// Connections open at once; beyond, new ones wait to be accepted until one closes
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds a connection may take to send a request's headers, or stay idle between requests,
    /// before it is closed (slow or silent clients are cut off)
    #[arg(long, default_value_t = 30.0)]
    pub header_timeout: f64,
    /// Largest request body in bytes; beyond, 413
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body_bytes: usize,
    /// Most images in one request; beyond, 413
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_images: u32,
    /// Most pixels in one image, read from its header before decoding; beyond, 422
    #[arg(long, default_value_t = 50_000_000)]
    pub max_pixels: u64,
    /// Seconds a request's body may take to arrive (slow clients are cut off with 408)
    #[arg(long, default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Seconds a request may wait for its captions; beyond, 504
    #[arg(long, default_value_t = 60.0)]
    pub request_timeout: f64,
}

impl ServeFlags {
    /// The server's settings.
    ///
    /// # Errors
    /// A timeout that is not a positive number of seconds.
    pub fn config(&self) -> Result<ServeConfig, String> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--{name} {value}: give a positive number of seconds"))
        };
        Ok(ServeConfig {
            max_batch: self.max_batch as usize,
            max_wait: Duration::from_millis(self.max_wait_ms),
            queue: self.queue as usize,
            max_concurrent: self.max_concurrent as usize,
            max_connections: self.max_connections as usize,
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            max_body_bytes: self.max_body_bytes,
            max_images: self.max_images as usize,
            max_pixels: self.max_pixels,
            body_timeout: seconds("body-timeout", self.body_timeout)?,
            request_timeout: seconds("request-timeout", self.request_timeout)?,
        })
    }

    /// Loads the model, listens, prints `listening on http://ADDRESS` and, after the warm-up,
    /// `ready after N ms`; serves until SIGINT or SIGTERM, then answers the requests in flight
    /// and returns.
    ///
    /// # Errors
    /// A message: settings out of range, a model that cannot be loaded, an address that cannot
    /// be listened on.
    pub fn run(&self) -> Result<(), String> {
        let config = self.config()?;
        let device = caption_model::parse_device(&self.device).map_err(|e| e.to_string())?;
        let captioner = match (&self.checkpoint, &self.original, &self.captions) {
            (Some(run), _, _) => Captioner::from_run_or_checkpoint(run, &device),
            (None, Some(original), Some(captions)) => {
                Captioner::from_original_files(original, captions, self.threshold, &device)
            }
            _ => return Err("give --checkpoint RUN, or --original FILE with --captions".into()),
        }
        .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the server's runtime: {e}"))?;
        runtime.block_on(async {
            let cannot_listen = |e: std::io::Error| format!("cannot listen on {}:{}: {e}", self.host, self.port);
            let listener =
                tokio::net::TcpListener::bind((self.host.as_str(), self.port)).await.map_err(cannot_listen)?;
            let address = listener.local_addr().map_err(cannot_listen)?;
            say(&format!("listening on http://{address}"));
            let on_ready = |after: Duration| {
                say(&format!(
                    "ready after {:.0} ms (Ctrl-C stops, finishing the requests in flight)",
                    after.as_secs_f64() * 1e3
                ));
            };
            crate::serve(captioner, config, listener, crate::stop_signal(), on_ready)
                .await
                .map_err(|e| e.to_string())?;
            say("stopped");
            Ok(())
        })
    }
}

/// A line on standard output, flushed (a supervisor or a test reads it as it comes).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
