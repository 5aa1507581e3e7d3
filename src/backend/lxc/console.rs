//! `--console-socket`: the caller listens on a unix socket; we connect and send exactly
//! one message carrying the pty master (SCM_RIGHTS), with the pty's name as data, as
//! runc does.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

pub fn send_master(console_socket: &Path, master: &OwnedFd) -> Result<()> {
    let what = || format!("console socket {}", console_socket.display());
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).with_context(what)?;
    connect(sock.as_raw_fd(), &UnixAddr::new(console_socket).with_context(what)?).with_context(what)?;
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(name)], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .with_context(what)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSliceMut;
    use std::os::unix::net::UnixListener;

    #[test]
    fn master_arrives_as_one_fd() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("console.sock");
        let l = UnixListener::bind(&p).unwrap();
        let f: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        send_master(&p, &f).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
        let n = msg.cmsgs().unwrap().count();
        assert_eq!(n, 1);
        assert_eq!(&buf[..9], b"/dev/ptmx");
    }
}
