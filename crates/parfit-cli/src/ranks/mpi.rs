//! The MPI transport (feature `mpi`): rank 0 hands out chunks of cases on demand and gathers results; the
//! other ranks ask for a chunk, run it on their rayon threads and send the results back with the next request.
//!
//! Only the main thread calls MPI (`Threading::Funneled`): rank 0's own share of the cases runs on a helper
//! thread that takes chunks from the same queue and never touches MPI.
//!
//! Protocol, per [`for_each_case`] call: a worker sends a *report* (the results of its last chunk, empty at
//! first) and receives a *chunk* of case indices; an empty chunk releases it. MPI keeps messages between two
//! ranks in order and rank 0 listens only to ranks it has not released, so successive calls (a projection's
//! waves) never mix.
//!
//! Input files ([`read_shared`]) travel on their own tag, from rank 0 to each other rank in the order read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpi::Count;
use mpi::collective::CommunicatorCollectives;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source, Status};
use mpi::topology::{Communicator, SimpleCommunicator};

use parfit_app::dispatch::take_u64;

use super::{Wire, run_here};
use crate::error::{CliError, CliResult, failed};

const TAG_REPORT: i32 = 1;
const TAG_CHUNK: i32 = 2;
const TAG_INPUT: i32 = 3;
/// How long rank 0 waits, after a stop, for ranks still holding cases before it gives up on them.
const GRACE: Duration = Duration::from_secs(10);

/// How long a rank waiting for a message sleeps between polls: short next to any chunk's work.
const IDLE: Duration = Duration::from_micros(200);

static WORLD: OnceLock<(usize, usize)> = OnceLock::new();

/// Whether an MPI launcher (mpirun/mpiexec, or srun with PMI/PMIx) started this process. Without one the
/// binary runs as a plain process and never initialises MPI (a singleton MPI_Init would start a daemon).
fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].iter().any(|v| std::env::var_os(v).is_some())
}

/// Initialise MPI when launched by an MPI launcher. Keep the returned universe alive until the end of
/// `main`: dropping it finalises MPI.
pub fn start() -> Option<Universe> {
    if !launched() {
        return None;
    }
    let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)?;
    let world = universe.world();
    let _ = WORLD.set((world.rank() as usize, world.size() as usize));
    Some(universe)
}

/// (rank, size) once MPI is initialised.
pub fn world() -> Option<(usize, usize)> {
    WORLD.get().copied()
}

/// End the whole job after an error on this rank, its message printed first and once. Every rank runs the same
/// command on the same inputs, so an error (bad input, a refused option, a failed fit, an interrupt) is met by
/// every rank alike: rank 0 prints it and aborts the job (`MPI_Abort`, so no rank waits forever for one that
/// stopped), and the other ranks wait for that abort instead of aborting at once, which could end rank 0 before
/// its message is out. An error rank 0 does not meet (it is still running after [`ROOT_REPORTS_WITHIN`]) is this
/// rank's own: it prints it with its rank and aborts. Finished cases are already in rank 0's checkpoint.
pub fn fail(universe: Universe, e: &CliError) -> ! {
    let (rank, size) = world().unwrap_or((0, 1));
    delay_for_test(rank);
    if rank == 0 {
        crate::console::note(&format!("error: {e}"));
    }
    if size == 1 {
        drop(universe);
        std::process::exit(e.exit_code());
    }
    if rank != 0 {
        std::thread::sleep(ROOT_REPORTS_WITHIN);
        crate::console::note(&format!("error on rank {rank}: {e}"));
    }
    universe.world().abort(e.exit_code())
}

/// How long a rank other than 0 waits after an error for rank 0 to report it and end the job: far longer than
/// ranks running the same steps drift apart, short enough that an error of one rank alone is not held long.
const ROOT_REPORTS_WITHIN: Duration = Duration::from_secs(30);

/// Test only: `PARFIT_TEST_ERROR_DELAY=RANK:SECONDS` holds that rank back this long before it reports an error,
/// so `tests/tests/mpi.rs` can make rank 0 the last to meet an error all ranks share.
fn delay_for_test(rank: usize) {
    let delay = std::env::var("PARFIT_TEST_ERROR_DELAY").ok().and_then(|v| {
        let (r, seconds) = v.split_once(':')?;
        let seconds = Duration::try_from_secs_f64(seconds.parse().ok()?).ok()?;
        (r.parse::<usize>().ok()? == rank).then_some(seconds)
    });
    if let Some(delay) = delay {
        std::thread::sleep(delay);
    }
}

/// See [`super::for_each_case`]. Pass the command's signal flag as `cancel`: mpirun forwards SIGINT/SIGTERM
/// to every rank, and sends SIGTERM to the others when one rank dies.
pub fn for_each_case<T: Wire>(
    cases: &[usize],
    chunk: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
    done: &(dyn Fn(usize, T) + Sync),
) -> CliResult<()> {
    let world = SimpleCommunicator::world();
    if world.rank() == 0 { root(&world, cases, chunk, cancel, work, done) } else { worker(&world, cancel, work) }
}

fn root<T: Wire>(
    world: &SimpleCommunicator,
    cases: &[usize],
    chunk: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
    done: &(dyn Fn(usize, T) + Sync),
) -> CliResult<()> {
    let chunks: Vec<&[usize]> = cases.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    let stop = || cancel.load(Ordering::Relaxed);
    let take = || if stop() { None } else { chunks.get(next.fetch_add(1, Ordering::Relaxed)).copied() };
    let mut held: BTreeMap<i32, &[usize]> = BTreeMap::new();
    // Ranks not yet released in this call. Only they are listened to: a released rank may already have sent
    // the first report of the next call (a projection's next wave), which must wait for that call.
    let mut active: BTreeSet<i32> = (1..world.size()).collect();
    let mut error = None;
    std::thread::scope(|s| {
        // Rank 0 computes too, on its own rayon pool, from the same queue.
        s.spawn(|| {
            while let Some(c) = take() {
                run_here(c, cancel, work, done);
            }
        });
        let mut stopped_at: Option<Instant> = None;
        while !active.is_empty() {
            let report =
                active.iter().find_map(|&r| world.process_at_rank(r).immediate_matched_probe_with_tag(TAG_REPORT));
            if let Some(matched) = report {
                let (bytes, status): (Vec<u8>, Status) = matched.matched_receive_vec();
                let from = status.source_rank();
                held.remove(&from);
                if let Err(e) = deliver(&bytes, done) {
                    error.get_or_insert(failed(format!("rank {from} sent results rank 0 cannot read: {e}")));
                    cancel.store(true, Ordering::Relaxed);
                }
                let reply: &[usize] = if error.is_some() { &[] } else { take().unwrap_or(&[]) };
                let indices: Vec<u64> = reply.iter().map(|&i| i as u64).collect();
                world.process_at_rank(from).send_with_tag(&indices[..], TAG_CHUNK);
                if reply.is_empty() {
                    active.remove(&from);
                } else {
                    held.insert(from, reply);
                }
                continue;
            }
            if stop() || error.is_some() {
                let since = *stopped_at.get_or_insert_with(|| {
                    // Say now who holds what: if a rank died, mpirun may end this one before the grace is over.
                    for (rank, cases) in &held {
                        crate::console::note(&format!(
                            "stopping: rank {rank} holds cases {} (0-based indices)",
                            ranges(cases)
                        ));
                    }
                    Instant::now()
                });
                if since.elapsed() > GRACE {
                    let lost: Vec<String> =
                        held.iter().map(|(r, c)| format!("rank {r} (cases {})", ranges(c))).collect();
                    error.get_or_insert(failed(format!(
                        "no answer from {} within {} s of the stop; their cases are not done",
                        lost.join(", "),
                        GRACE.as_secs()
                    )));
                    break;
                }
            }
            // Nothing to do: yield the core to this rank's workers (ranks often share cores).
            std::thread::sleep(IDLE);
        }
    });
    error.map_or(Ok(()), Err)
}

/// An input file read once for every rank (see [`crate::inputs`]): rank 0 runs `read` and sends each other rank
/// the path, then the bytes or the error; the others wait for that message and never touch the disk. Called
/// on the main thread by every rank for the same files in the same order; a rank whose path differs from
/// rank 0's ends the job, since the ranks' inputs no longer agree.
pub fn read_shared(path: &Path, read: impl FnOnce() -> FileRead) -> FileRead {
    let world = SimpleCommunicator::world();
    let name = path.as_os_str().as_encoded_bytes();
    if world.rank() == 0 {
        let mut result = read();
        let mut message = input_message(name, &result);
        // An MPI message's length is a C int.
        if Count::try_from(message.len()).is_err() {
            result = Err("too large to share between MPI ranks (2 GiB at most)".into());
            message = input_message(name, &result);
        }
        for rank in 1..world.size() {
            world.process_at_rank(rank).send_with_tag(&message[..], TAG_INPUT);
        }
        return result;
    }
    let root = world.process_at_rank(0);
    // Poll rather than block, as workers do: rank 0 may be reading a large table.
    let (message, _): (Vec<u8>, Status) = loop {
        if let Some(matched) = root.immediate_matched_probe_with_tag(TAG_INPUT) {
            break matched.matched_receive_vec();
        }
        std::thread::sleep(IDLE);
    };
    match parse_input_message(&message) {
        Some((sent, result)) if sent == name => result,
        found => {
            let sent = found.map_or("an unreadable message".into(), |(p, _)| String::from_utf8_lossy(p).into_owned());
            crate::console::note(&format!(
                "error on rank {}: it reads input {} where rank 0 read {sent}; every rank must read the same \
                 inputs in the same order (a parfit bug)",
                world.rank(),
                path.display()
            ));
            world.abort(1)
        }
    }
}

/// A file's bytes, or why it cannot be read.
type FileRead = Result<Vec<u8>, String>;

/// `path length, path, 0 and the bytes | 1 and the error text`.
fn input_message(path: &[u8], result: &FileRead) -> Vec<u8> {
    let (flag, body) = match result {
        Ok(bytes) => (0u8, &bytes[..]),
        Err(e) => (1u8, e.as_bytes()),
    };
    let mut message = Vec::with_capacity(9 + path.len() + body.len());
    message.extend((path.len() as u64).to_le_bytes());
    message.extend_from_slice(path);
    message.push(flag);
    message.extend_from_slice(body);
    message
}

fn parse_input_message(message: &[u8]) -> Option<(&[u8], FileRead)> {
    let mut rest = message;
    let len = usize::try_from(take_u64(&mut rest).ok()?).ok()?;
    let (path, rest) = (rest.get(..len)?, rest.get(len..)?);
    let (&flag, body) = rest.split_first()?;
    match flag {
        0 => Some((path, Ok(body.to_vec()))),
        1 => Some((path, Err(String::from_utf8_lossy(body).into_owned()))),
        _ => None,
    }
}

/// Case indices as compact ranges for messages: `3–7, 12, 40–41`.
fn ranges(cases: &[usize]) -> String {
    let mut sorted = cases.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if j > i { format!("{}–{}", sorted[i], sorted[j]) } else { sorted[i].to_string() });
        i = j + 1;
    }
    parts.join(", ")
}

/// One fit's batches over every rank: rank r evaluates the r-th contiguous share of the rows on its threads,
/// and an all-gather gives every rank every row, so every rank's optimiser or sampler sees the same values.
/// Called by the driver on the main thread, the one that talks MPI.
#[derive(Debug)]
pub struct RankSpread;

impl parfit_core::parallel::Spread for RankSpread {
    fn fill_rows(&self, width: usize, out: &mut [f64], local: &mut dyn FnMut(usize, &mut [f64])) {
        let world = SimpleCommunicator::world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let rows = out.len().checked_div(width).unwrap_or(0);
        let bound = |r: usize| r * rows / size;
        let mut share = vec![0.0; (bound(rank + 1) - bound(rank)) * width];
        local(bound(rank), &mut share);
        let counts: Vec<Count> = (0..size).map(|r| ((bound(r + 1) - bound(r)) * width) as Count).collect();
        let displs: Vec<Count> = (0..size).map(|r| (bound(r) * width) as Count).collect();
        world.all_gather_varcount_into(&share[..], &mut PartitionMut::new(out, counts, displs));
    }
}

/// Decode a worker's report and hand each result to `done`.
fn deliver<T: Wire>(bytes: &[u8], done: &(dyn Fn(usize, T) + Sync)) -> Result<(), String> {
    let mut rest = bytes;
    let count = if rest.is_empty() { 0 } else { take_u64(&mut rest)? };
    for _ in 0..count {
        let index = take_u64(&mut rest)? as usize;
        let len = take_u64(&mut rest)? as usize;
        if rest.len() < len {
            return Err("a truncated result".into());
        }
        let (item, tail) = rest.split_at(len);
        rest = tail;
        done(index, T::decode(item)?);
    }
    Ok(())
}

fn worker<T: Wire>(
    world: &SimpleCommunicator,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize) -> T + Sync),
) -> CliResult<()> {
    let root = world.process_at_rank(0);
    let mut report: Vec<u8> = Vec::new();
    loop {
        root.send_with_tag(&report[..], TAG_REPORT);
        // Poll rather than block: Open MPI's blocking receive spins, taking a core from rank 0 while it folds a
        // wave or writes, and from other ranks sharing the machine.
        let (indices, _): (Vec<u64>, Status) = loop {
            if let Some(matched) = root.immediate_matched_probe_with_tag(TAG_CHUNK) {
                break matched.matched_receive_vec();
            }
            std::thread::sleep(IDLE);
        };
        if indices.is_empty() {
            return Ok(());
        }
        let chunk: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
        let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(chunk.len()));
        run_here(&chunk, cancel, work, &|i, r| results.lock().unwrap_or_else(|p| p.into_inner()).push((i, r)));
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        report.clear();
        report.extend((results.len() as u64).to_le_bytes());
        let mut item = Vec::new();
        for (i, r) in &results {
            item.clear();
            r.encode(&mut item);
            report.extend((*i as u64).to_le_bytes());
            report.extend((item.len() as u64).to_le_bytes());
            report.extend_from_slice(&item);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_compact_runs() {
        assert_eq!(super::ranges(&[7, 3, 4, 5, 12, 40, 41]), "3–5, 7, 12, 40–41");
        assert_eq!(super::ranges(&[]), "");
    }

    #[test]
    fn input_messages_round_trip() {
        for result in
            [Ok(b"a,b\n1,2\n".to_vec()), Ok(vec![]), Err("No such file or directory (os error 2)".to_string())]
        {
            let message = super::input_message(b"dir/cases.csv", &result);
            assert_eq!(super::parse_input_message(&message), Some((&b"dir/cases.csv"[..], result)));
        }
        assert_eq!(super::parse_input_message(&[5, 0, 0]), None);
    }
}
