//! Standard input as a transport that a stop can interrupt.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

/// Standard input for [`Server::serve_stdio`](super::Server::serve_stdio): waits for input or for the
/// wake-up socket's peer to be shut down, whichever comes first, so that a
/// stop does not wait for the next line. Reads go to the descriptor itself:
/// std's buffer in front of it could hold data that `poll` does not see.
pub(super) struct StdinReader {
    pub(super) stdin: io::Stdin,
    pub(super) wake: UnixStream,
}

impl Read for StdinReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags};
        use std::os::fd::AsFd;
        let stdin = self.stdin.as_fd();
        let (input, woken) = {
            let mut fds = [
                PollFd::new(&stdin, PollFlags::IN),
                PollFd::new(&self.wake, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Err(io::ErrorKind::Interrupted.into()),
                Err(e) => return Err(e.into()),
            }
            (fds[0].revents(), !fds[1].revents().is_empty())
        };
        if woken {
            // run_client sees the stop flag, which was set before the
            // wake-up, and returns the stop reason for this error.
            return Err(io::Error::other("server stopped"));
        }
        if input.contains(PollFlags::NVAL) {
            // No standard input at all: like std, treat it as empty.
            return Ok(0);
        }
        match rustix::io::read(stdin, buf) {
            Ok(n) => Ok(n),
            Err(rustix::io::Errno::BADF) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
}
