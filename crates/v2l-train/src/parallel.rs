//! Data-parallel training on burn's collective engine (`burn::collective`,
//! the `collective` feature; not burn's CUDA-only `distributed` feature).
//!
//! One process drives `W` peers, one thread and one copy of the networks
//! per device (several peers may share the CPU). Each iteration takes
//! `W · batch_size` images from the epoch's order: peer `r` gets images
//! `r·batch_size … (r+1)·batch_size − 1` of that global batch, so the data
//! order does not depend on how many peers share it. Every peer computes
//! its gradients on its shard, the gradients are averaged with
//! `GradientsParams::all_reduce` (mean) right before each optimiser step,
//! and each peer steps its own Adam with the averaged gradients — so the
//! peers' parameters stay equal, as under PyTorch DDP.
//!
//! What differs from one device with batch `W · batch_size`:
//! - the adaptive GAN weight is each peer's own (as under DDP, where
//!   `torch.autograd.grad` does not synchronise); it is multiplied into the
//!   gradient only after `disc_start`;
//! - the discriminator's BatchNorm normalises with each peer's batch
//!   statistics, and its running statistics are the peer's own (peer 0's
//!   are saved);
//! - LPIPS dropout masks are drawn per peer (peer 0 keeps the single-device
//!   seed);
//! - the `code-entropy` term's usage statistics are per peer.
//!
//! Before `disc_start` and with `lpips_dropout = false`, `W` peers with
//! batch `b` give the parameters of one device with batch `W·b` up to float
//! rounding (tested).
//!
//! Peer 0 (the calling thread) runs the loop: it reads the run directory,
//! tells the other peers which images to take, measures validation, writes
//! metrics and checkpoints (once). A resumed run restores every peer from
//! the same checkpoint. A peer that fails stops the others before the next
//! gradient exchange, and the error names it. burn's collective server is
//! one per process: a second data-parallel run in the same process waits
//! for the first to end.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, MutexGuard};

use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;

use crate::data::TrainData;
use crate::error::{Result, TrainError};
use crate::run::Session;
use crate::trainer::{GradientSync, Iteration, Net, StepReport};

/// The devices of a run, one peer each (the first is peer 0, which
/// writes the run directory). Peers of one backend only.
#[derive(Debug, Clone)]
pub struct PeerConfig<D> {
    /// The devices, one peer each.
    pub devices: Vec<D>,
}

impl<D> PeerConfig<D> {
    /// These devices.
    pub fn local(devices: Vec<D>) -> Self {
        Self { devices }
    }

    /// burn's collective configuration for these peers.
    pub fn collective(&self) -> CollectiveConfig {
        CollectiveConfig::default().with_num_devices(self.devices.len())
    }

    /// Whether gradients are exchanged at all (more than one peer).
    pub fn is_parallel(&self) -> bool {
        self.devices.len() > 1
    }
}

/// What an iteration needs besides its images.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Order {
    pub step: u64,
    pub within: u64,
    pub lr: f64,
    pub seed: u64,
}

enum ToPeer {
    Step(Vec<usize>, Order),
    Go,
    Abort,
}

enum FromPeer {
    Ready,
    Done(Box<StepReport>),
    Failed(TrainError),
}

struct Link {
    to: Sender<ToPeer>,
    from: Receiver<FromPeer>,
}

/// Peer 0's handles on the other peers of this process.
pub(crate) struct Peers {
    links: Vec<Link>,
    /// Held while gradients are exchanged (`None` for a single device):
    /// burn's collective server is one per process and backend, so one
    /// data-parallel run at a time (a second waits here).
    turn: Option<MutexGuard<'static, ()>>,
}

static COLLECTIVE_TURN: Mutex<()> = Mutex::new(());

fn collective_err(e: collective::CollectiveError) -> TrainError {
    TrainError::Parallel(format!("burn collective: {e:?}"))
}

fn lost(rank: usize) -> TrainError {
    TrainError::Parallel(format!("peer {rank} stopped"))
}

/// The seed of peer `rank`'s LPIPS dropout masks.
fn peer_seed(seed: u64, rank: usize) -> u64 {
    if rank == 0 {
        seed
    } else {
        crate::data::mix(seed, 4, rank as u64)
    }
}

/// One iteration of `session` on the images `indices` of `data`.
pub(crate) fn run_step<B: AutodiffBackend>(
    session: &mut Session<B>,
    data: &TrainData,
    indices: &[usize],
    image_size: usize,
    order: Order,
    rank: usize,
    sync: &mut GradientSync<'_>,
) -> Result<StepReport> {
    let batch = data.batch(indices)?;
    let images = session.images(&batch, image_size);
    let global = session.global_input(&batch)?;
    session.trainer.step_synced(
        Iteration {
            images,
            global,
            cur_iter: order.step,
            within_epoch: order.within,
            lr: order.lr,
            rng_seed: peer_seed(order.seed, rank),
        },
        sync,
    )
}

impl Peers {
    /// Start peers 1… of `config` (peer 0 is the caller, holding `session`)
    /// in `scope`, each with a copy of `session` on its device, and register
    /// peer 0 with the collective.
    ///
    /// # Errors
    /// burn's collective refuses the registration.
    pub(crate) fn start<'scope, 'env, B: AutodiffBackend>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        session: &Session<B>,
        data: &TrainData,
        image_size: usize,
        config: &PeerConfig<B::Device>,
    ) -> Result<Self> {
        if !config.is_parallel() {
            return Ok(Self {
                links: Vec::new(),
                turn: None,
            });
        }
        let turn = COLLECTIVE_TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cc = config.collective();
        collective::reset_collective::<B::InnerBackend>();
        let mut links = Vec::new();
        for (rank, device) in config.devices.iter().enumerate().skip(1) {
            let (to, rx) = channel();
            let (tx, from) = channel();
            let worker = Worker {
                rank,
                session: session.fork_peer(device),
                data: data.clone(),
                image_size,
                collective: cc.clone(),
            };
            scope.spawn(move || {
                // A panic in a peer becomes its error, so peer 0 reports it
                // instead of the scope re-raising it.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker.serve(&rx, &tx)
                }));
                let failure = match served {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(panic) => Some(TrainError::Parallel(format!(
                        "peer {rank} panicked: {}",
                        panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("(no message)")
                    ))),
                };
                if let Some(e) = failure {
                    let _ = tx.send(FromPeer::Failed(e));
                }
            });
            links.push(Link { to, from });
        }
        collective::register::<B::InnerBackend>(PeerId(0), session.device().clone(), cc)
            .map_err(collective_err)?;
        Ok(Self {
            links,
            turn: Some(turn),
        })
    }

    /// The number of peers in this process.
    pub(crate) fn world(&self) -> usize {
        self.links.len() + 1
    }

    fn abort(&self) {
        for l in &self.links {
            let _ = l.to.send(ToPeer::Abort);
        }
    }

    /// Wait until every peer has its gradients, then let all exchange them.
    fn coordinate<B: AutodiffBackend>(&self, grads: GradientsParams) -> Result<GradientsParams> {
        for (i, l) in self.links.iter().enumerate() {
            match l.from.recv() {
                Ok(FromPeer::Ready) => {}
                Ok(FromPeer::Failed(e)) => {
                    self.abort();
                    return Err(TrainError::Parallel(format!("peer {}: {e}", i + 1)));
                }
                Ok(FromPeer::Done(_)) | Err(_) => {
                    self.abort();
                    return Err(lost(i + 1));
                }
            }
        }
        for l in &self.links {
            let _ = l.to.send(ToPeer::Go);
        }
        grads
            .all_reduce::<B::InnerBackend>(PeerId(0), ReduceOperation::Mean)
            .map_err(collective_err)
    }

    /// One iteration on every peer: `indices` is the global batch
    /// (`world · batch_size` images), peer `r` takes the `r`-th
    /// `batch_size` of it. Returns the peers' measurements combined.
    ///
    /// # Errors
    /// Any peer's error, named by peer.
    pub(crate) fn step<B: AutodiffBackend>(
        &self,
        session: &mut Session<B>,
        data: &TrainData,
        indices: &[usize],
        image_size: usize,
        order: Order,
    ) -> Result<StepReport> {
        let shard = indices.len() / self.world();
        let mut shards = indices.chunks(shard.max(1));
        let own = shards.next().unwrap_or(&[]);
        for (l, s) in self.links.iter().zip(shards) {
            if l.to.send(ToPeer::Step(s.to_vec(), order)).is_err() {
                return Err(lost(1));
            }
        }
        let report = if self.turn.is_some() {
            let mut sync = |_: Net, g| self.coordinate::<B>(g);
            run_step(session, data, own, image_size, order, 0, &mut sync)
        } else {
            let mut sync = |_: Net, g| Ok(g);
            run_step(session, data, own, image_size, order, 0, &mut sync)
        };
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                self.abort();
                return Err(e);
            }
        };
        let mut reports = vec![report];
        for (i, l) in self.links.iter().enumerate() {
            match l.from.recv() {
                Ok(FromPeer::Done(r)) => reports.push(*r),
                Ok(FromPeer::Failed(e)) => {
                    self.abort();
                    return Err(TrainError::Parallel(format!("peer {}: {e}", i + 1)));
                }
                Ok(FromPeer::Ready) | Err(_) => {
                    self.abort();
                    return Err(lost(i + 1));
                }
            }
        }
        Ok(combine(reports))
    }

    /// Stop the other peers and leave the collective.
    pub(crate) fn finish<B: AutodiffBackend>(self) -> Result<()> {
        let collective = self.turn.is_some();
        drop(self.links);
        if collective {
            collective::finish_collective::<B::InnerBackend>(PeerId(0)).map_err(collective_err)?;
        }
        Ok(())
    }
}

/// A peer other than 0 and what it works with.
struct Worker<B: AutodiffBackend> {
    rank: usize,
    session: Session<B>,
    data: TrainData,
    image_size: usize,
    collective: CollectiveConfig,
}

impl<B: AutodiffBackend> Worker<B> {
    /// Register, then run the iterations peer 0 sends until it stops (its
    /// channel closes) or aborts.
    fn serve(mut self, rx: &Receiver<ToPeer>, tx: &Sender<FromPeer>) -> Result<()> {
        let id = PeerId(self.rank as u32);
        let device = self.session.device().clone();
        collective::register::<B::InnerBackend>(id, device, self.collective.clone())
            .map_err(collective_err)?;
        while let Ok(ToPeer::Step(indices, order)) = rx.recv() {
            let mut sync = |_: Net, grads: GradientsParams| {
                tx.send(FromPeer::Ready).map_err(|_| lost(0))?;
                match rx.recv() {
                    Ok(ToPeer::Go) => grads
                        .all_reduce::<B::InnerBackend>(id, ReduceOperation::Mean)
                        .map_err(collective_err),
                    _ => Err(lost(0)),
                }
            };
            let report = run_step(
                &mut self.session,
                &self.data,
                &indices,
                self.image_size,
                order,
                self.rank,
                &mut sync,
            )?;
            if tx.send(FromPeer::Done(Box::new(report))).is_err() {
                break;
            }
        }
        collective::finish_collective::<B::InnerBackend>(id).map_err(collective_err)
    }
}

/// The peers' measurements as one: loss terms averaged (each is a mean
/// over its peer's equal share of the batch), local ids concatenated in
/// peer order.
fn combine(mut reports: Vec<StepReport>) -> StepReport {
    if reports.len() == 1 {
        return reports.remove(0);
    }
    let n = reports.len() as f64;
    let mean = |f: &dyn Fn(&StepReport) -> f64| reports.iter().map(f).sum::<f64>() / n;
    let mean_opt = |f: &dyn Fn(&StepReport) -> Option<f64>| {
        let v: Option<Vec<f64>> = reports.iter().map(f).collect();
        v.map(|v| v.iter().sum::<f64>() / n)
    };
    StepReport {
        rec_loss: mean(&|r| r.rec_loss),
        p_loss: mean(&|r| r.p_loss),
        qloss: mean(&|r| r.qloss),
        g_loss: mean(&|r| r.g_loss),
        d_weight: mean(&|r| r.d_weight),
        nll_grad_norm: mean(&|r| r.nll_grad_norm),
        g_grad_norm: mean(&|r| r.g_grad_norm),
        loss: mean(&|r| r.loss),
        grad_norm: mean(&|r| r.grad_norm),
        d_loss: mean_opt(&|r| r.d_loss),
        rec_loss_2: mean_opt(&|r| r.rec_loss_2),
        code_entropy: mean_opt(&|r| r.code_entropy),
        local_ids: reports.iter().flat_map(|r| r.local_ids.clone()).collect(),
    }
}
