//! Connects the processes of one run to each other before timely starts (its cluster
//! mode, `run.rs`): process `p` listens at its own address, connects to every process
//! below it and accepts every process above it, one TCP stream per pair, which timely's
//! networking then carries the run's exchanges and progress over.
//!
//! ```text
//! process p ──connect (retry every 20 ms)──▶ process q < p     "SLUICE01" ‖ p (u64, big-endian)
//! process p ◀──accept (poll every 5 ms)───── process r > p
//! ```
//!
//! Timely's own setup does the same but sleeps a second between attempts, and the
//! processes of a run start together, so nearly every start and restart waited a second
//! or two. Each connection starts with a greeting (a magic and the connecting process's
//! index); anything else that connects to the port is closed and ignored.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const GREETING: &[u8; 8] = b"SLUICE01";
const CONNECT_RETRY: Duration = Duration::from_millis(20);
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long a connection may take to greet.
const GREETING_WITHIN: Duration = Duration::from_secs(5);

/// One stream to every other process of the run, by process index (`None` at `me`),
/// blocking and without Nagle; an error once `within` passes without every peer.
pub(crate) fn connect(
    addresses: &[String],
    me: usize,
    within: Duration,
) -> std::io::Result<Vec<Option<TcpStream>>> {
    let deadline = Instant::now() + within;
    let listener = TcpListener::bind(addresses[me].as_str()).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("process {me} cannot listen at {}: {e}", addresses[me]),
        )
    })?;
    listener.set_nonblocking(true)?;
    let above = addresses.len() - me - 1;
    let accepting = std::thread::Builder::new()
        .name("cluster-accept".into())
        .spawn(move || accept(&listener, me, above, deadline))?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(addresses.len());
    for (peer, address) in addresses.iter().enumerate().take(me) {
        streams.push(Some(dial(address, peer, me, deadline)?));
    }
    streams.push(None);
    let accepted = accepting
        .join()
        .map_err(|_| std::io::Error::other("the accepting thread panicked"))??;
    streams.extend(accepted.into_iter().map(Some));
    Ok(streams)
}

/// Connects to process `peer` at `address` and greets it as process `me`.
fn dial(address: &str, peer: usize, me: usize, deadline: Instant) -> std::io::Result<TcpStream> {
    loop {
        match TcpStream::connect(address) {
            Ok(mut stream) => {
                stream.set_nodelay(true)?;
                let mut hello = GREETING.to_vec();
                hello.extend_from_slice(&(me as u64).to_be_bytes());
                stream.write_all(&hello)?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("process {me} could not reach process {peer} at {address}: {e}"),
                ))
            }
            Err(_) => std::thread::sleep(CONNECT_RETRY),
        }
    }
}

/// Accepts the `above` processes with higher indices than `me`, in index order.
fn accept(
    listener: &TcpListener,
    me: usize,
    above: usize,
    deadline: Instant,
) -> std::io::Result<Vec<TcpStream>> {
    let mut got: Vec<Option<TcpStream>> = (0..above).map(|_| None).collect();
    while got.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((stream, from)) => match greeted(stream, me, above) {
                Ok((index, stream)) if got[index - me - 1].is_none() => {
                    got[index - me - 1] = Some(stream);
                }
                Ok((index, _)) => {
                    tracing::warn!("process {index} of this run connected twice (from {from}): the second is closed");
                }
                Err(e) => {
                    tracing::warn!("a connection from {from} is not a process of this run: {e}")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<usize> = got
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.is_none())
                        .map(|(i, _)| me + 1 + i)
                        .collect();
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("process {me}: processes {missing:?} of this run never connected"),
                    ));
                }
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(got.into_iter().flatten().collect())
}

/// Reads a connection's greeting: the index of a process above `me`.
fn greeted(mut stream: TcpStream, me: usize, above: usize) -> std::io::Result<(usize, TcpStream)> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(GREETING_WITHIN))?;
    let mut hello = [0u8; 16];
    stream.read_exact(&mut hello)?;
    let index = u64::from_be_bytes(hello[8..].try_into().unwrap_or_default()) as usize;
    if &hello[..8] != GREETING || index <= me || index > me + above {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it did not greet as a process of this run",
        ));
    }
    stream.set_read_timeout(None)?;
    stream.set_nodelay(true)?;
    Ok((index, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    }

    /// Three processes started in the worst order (the highest first, the listener of
    /// the lowest last) connect pairwise within milliseconds, not seconds; a stranger
    /// on a port is ignored.
    #[test]
    fn processes_connect_pairwise_fast_and_strangers_are_ignored() {
        let addresses: Vec<String> = (0..3).map(|_| free_port()).collect();
        let started = Instant::now();
        let mut threads = Vec::new();
        for me in (0..3).rev() {
            let all = addresses.clone();
            threads.push(std::thread::spawn(move || {
                let mut streams = connect(&all, me, Duration::from_secs(10)).unwrap();
                // Each pair can talk: say our index to everyone, hear theirs.
                for (peer, s) in streams.iter_mut().enumerate() {
                    if let Some(s) = s {
                        s.write_all(&[me as u8]).unwrap();
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b).unwrap();
                        assert_eq!(b[0] as usize, peer);
                    }
                }
                streams.iter().filter(|s| s.is_none()).count()
            }));
            if me == 2 {
                // A stranger greets process 2's port badly before the others start.
                std::thread::sleep(Duration::from_millis(50));
                if let Ok(mut s) = TcpStream::connect(&addresses[2]) {
                    let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n");
                }
            }
        }
        for t in threads {
            assert_eq!(t.join().unwrap(), 1, "a stream to every other process");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_process_that_never_comes_is_an_error_naming_it() {
        let addresses: Vec<String> = (0..2).map(|_| free_port()).collect();
        let e = connect(&addresses, 0, Duration::from_millis(200)).unwrap_err();
        assert!(
            e.to_string()
                .contains("processes [1] of this run never connected"),
            "{e}"
        );
        let e = connect(&addresses, 1, Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("could not reach process 0"), "{e}");
    }
}
