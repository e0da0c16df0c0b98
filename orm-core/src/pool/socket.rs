//! The TCP socket under a libpq connection, found without guessing, and the two things done
//! with it: proving the connection reaches PostgreSQL directly, and shutting it down when a
//! call passes its deadline.
//!
//! Diesel does not expose libpq's connection handle, so the socket is found from outside, in
//! `/proc/self`: the sockets this process holds (`/proc/self/fd`) before and after the connect,
//! and their addresses (`/proc/self/net/tcp`, `tcp6`). A socket that is new after the connect
//! and carries the address and port the server reports for the session
//! (`inet_client_addr()`, `inet_client_port()`, `inet_server_addr()`, `inet_server_port()`) is
//! the connection's own, whatever other thread connected at the same time: two sockets of one
//! machine never share both ends. When the server reports another pair (a pooler's own
//! connection, or a NAT), the connection does not reach the server directly; its socket is
//! then the one new TCP socket of the connect, and is left unknown if several appeared.
//!
//! This is the only module with `unsafe` code: [`shutdown`], one `libc::shutdown` call on a
//! descriptor this process owns.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connected TCP socket of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Socket {
    fd: i32,
    inode: u64,
    /// This end's address.
    pub(crate) local: SocketAddr,
    /// The server's (or the pooler's) end.
    pub(crate) remote: SocketAddr,
}

/// What the server reports about the session's connection: its client's end and its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerView {
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
}

impl ServerView {
    /// From the text of `host(inet_client_addr())`, `inet_client_port()`,
    /// `host(inet_server_addr())`, `inet_server_port()`: `None` over a Unix socket (all NULL)
    /// or for text that is not an address.
    pub(crate) fn parse(
        client: Option<&str>,
        client_port: Option<i32>,
        server: Option<&str>,
        server_port: Option<i32>,
    ) -> Option<Self> {
        let addr = |ip: Option<&str>, port: Option<i32>| {
            let ip: IpAddr = ip?.parse().ok()?;
            Some(SocketAddr::new(canonical(ip), u16::try_from(port?).ok()?))
        };
        Some(Self {
            client: addr(client, client_port)?,
            server: addr(server, server_port)?,
        })
    }
}

/// The sockets (by inode) this process holds now. Empty where `/proc` is not mounted.
pub(crate) fn open_sockets() -> HashSet<u64> {
    own_sockets().into_iter().map(|(_, inode)| inode).collect()
}

/// The connected TCP sockets this process holds now that were not in `before`.
pub(crate) fn new_tcp_sockets(before: &HashSet<u64>) -> Vec<Socket> {
    let fresh: Vec<(i32, u64)> = own_sockets()
        .into_iter()
        .filter(|(_, inode)| !before.contains(inode))
        .collect();
    if fresh.is_empty() {
        return Vec::new();
    }
    let table = tcp_table();
    fresh
        .into_iter()
        .filter_map(|(fd, inode)| {
            let &(local, remote) = table.iter().find(|(i, _)| *i == inode).map(|(_, a)| a)?;
            Some(Socket {
                fd,
                inode,
                local,
                remote,
            })
        })
        .collect()
}

/// Among `candidates`, the socket whose ends are those the server reports: proof that the
/// connection reaches the server with no pooler or proxy between.
pub(crate) fn direct(candidates: &[Socket], view: Option<ServerView>) -> Option<Socket> {
    let view = view?;
    candidates
        .iter()
        .find(|s| s.local == view.client && s.remote == view.server)
        .copied()
}

/// Shut the socket down in both directions, so a call blocked reading it returns at once with
/// an error. The descriptor stays open (its owner closes it). Returns `false`, doing nothing,
/// when the descriptor no longer names the same socket.
pub(crate) fn shutdown(socket: &Socket) -> bool {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.fd));
    let same = link.is_ok_and(|l| l.to_str() == Some(&format!("socket:[{}]", socket.inode)));
    if !same {
        return false;
    }
    // SAFETY: `shutdown(2)` takes a descriptor and flags and touches no memory of ours. The
    // descriptor was just checked to name this connection's socket, and the caller holds the
    // lock that the connection's owner must take before closing it (see `deadline::Watch`),
    // so it cannot be closed and reused in between. Shutting a socket down does not close or
    // invalidate the descriptor; libpq sees the connection end, as if the server had closed it.
    unsafe { libc::shutdown(socket.fd, libc::SHUT_RDWR) == 0 }
}

/// Whether the PostgreSQL server at `addr` is alive: it answers a GSSAPI-encryption request
/// (the first message a client may send, answered by the postmaster itself before any
/// authentication; servers without GSSAPI answer `N`) within `timeout`. A stopped server's
/// kernel still accepts the TCP connection, so only an answer counts. The connection is
/// closed before the startup message, which PostgreSQL does not log.
pub(crate) fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    let start = Instant::now();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let left = timeout.saturating_sub(start.elapsed());
    if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
        return false;
    }
    // Length 8, then the GSSENCRequest code 80877104.
    const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    if stream.write_all(&GSSENC_REQUEST).is_err() {
        return false;
    }
    let mut answer = [0u8; 1];
    // An answer, or the server closing the connection: either way a process answered.
    stream.read(&mut answer).is_ok()
}

/// `(descriptor, inode)` of every socket this process holds.
fn own_sockets() -> Vec<(i32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
        let link = std::fs::read_link(entry.path()).ok()?;
        let inode = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        Some((fd, inode))
    })
    .collect()
}

/// `(inode, (local, remote))` of every established TCP socket in this process's network
/// namespace.
fn tcp_table() -> Vec<(u64, (SocketAddr, SocketAddr))> {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(parse_tcp_line)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One line of `/proc/net/tcp{,6}`: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`.
fn parse_tcp_line(line: &str) -> Option<(u64, (SocketAddr, SocketAddr))> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    const ESTABLISHED: &str = "01";
    if fields.get(3) != Some(&ESTABLISHED) {
        return None;
    }
    let local = parse_endpoint(fields.get(1)?)?;
    let remote = parse_endpoint(fields.get(2)?)?;
    let inode = fields.get(9)?.parse().ok()?;
    Some((inode, (local, remote)))
}

/// `0100007F:1538` (IPv4) or 32 hex digits and a port (IPv6): the address is written as
/// 32-bit words in the machine's byte order, the port in hex.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(canonical(ip), port))
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:127.0.0.1`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_tcp_lines() {
        let v4 = "   3: 0100007F:D5A2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 20 4 30 10 -1";
        let (inode, (local, remote)) = parse_tcp_line(v4).unwrap();
        assert_eq!(inode, 123456);
        assert_eq!(local, "127.0.0.1:54690".parse().unwrap());
        assert_eq!(remote, "127.0.0.1:5432".parse().unwrap());
        let listening = v4.replacen(" 01 ", " 0A ", 1);
        assert_eq!(parse_tcp_line(&listening), None);
        let v6 = "   0: 00000000000000000000000001000000:D5A2 0000000000000000FFFF00000100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 99 1";
        let (_, (local, remote)) = parse_tcp_line(v6).unwrap();
        assert_eq!(local, "[::1]:54690".parse().unwrap());
        assert_eq!(
            remote,
            "127.0.0.1:5432".parse().unwrap(),
            "v4-mapped reads as v4"
        );
    }

    #[test]
    fn server_view_needs_every_part() {
        let view = ServerView::parse(Some("127.0.0.1"), Some(5000), Some("127.0.0.1"), Some(5432));
        assert_eq!(view.unwrap().client, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(
            ServerView::parse(None, None, None, None),
            None,
            "a Unix socket"
        );
        assert_eq!(
            ServerView::parse(Some("x"), Some(1), Some("127.0.0.1"), Some(1)),
            None
        );
    }

    #[test]
    fn finds_its_own_socket_and_shuts_it_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let before = open_sockets();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut served, _) = listener.accept().unwrap();
        let fresh = new_tcp_sockets(&before);
        // The accepted end is new too: the client's end is the one whose remote is the listener.
        let mine = fresh
            .iter()
            .find(|s| s.local == client.local_addr().unwrap())
            .expect("the client's socket is found");
        assert_eq!(mine.remote, listener.local_addr().unwrap());
        let view = ServerView {
            client: client.local_addr().unwrap(),
            server: listener.local_addr().unwrap(),
        };
        assert_eq!(direct(&fresh, Some(view)), Some(*mine));
        assert!(shutdown(mine));
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).unwrap(), 0, "reads end at once");
        assert_eq!(served.read(&mut buf).unwrap(), 0, "the peer sees the end");
    }
}
