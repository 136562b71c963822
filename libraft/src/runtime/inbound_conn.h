// InboundConn: a connection a peer dialed to us (see transport.h for the contract).
//
// With TLS, the TLS handshake comes first (a dialer without a certificate from our CA is
// refused there). Then it must open with a valid handshake, both within kHandshakeTimeout:
// the dialer's Handshake (cluster id, target node, nonce), our HandshakeAck (our nonce
// and, with a cluster secret, our proof), the dialer's HandshakeFinish (its proof), as in
// docs/wire-protocol.md 4.1. Only then does it carry the peer's raft messages to the
// TransportHandler and its snapshot chunks to a SnapshotReceiver, answering each chunk
// with an ack. The first malformed, oversized or unexpected frame closes it. Our
// answers (handshake ack or reject, chunk acks) go out in order through out_.
//
// Snapshot chunks are written on the transport's receive thread (receive_thread.h): the
// io thread decodes a chunk and hands it over with its frame; the job writes it and posts
// the ack back. Order is kept as if it all ran here: chunks are written in arrival order,
// their acks go out in that order, and a raft message that arrived behind a chunk still
// being written is held until that chunk is done (the snapshot message follows the last
// chunk, and must find the snapshot finished). While more than kReceiveQueuedBytesMax of
// chunks wait for the disk, or 64 answers are owed, the connection takes no more frames
// and stops reading (TCP pushes back on the sender), so memory stays bounded whatever a
// peer sends, and a peer that stops reading our answers stalls its own connection.
//
// io thread only (checked with Transport::CheckThread), but for ReceiveSlot, which only
// receive-thread jobs touch (or the io thread once that thread is stopped). Every Asio
// completion first checks closed_: after Close() it touches nothing.
#pragma once

#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/peer_stream.h"
#include "runtime/transport.h"
#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/snapshot_chunk.h"

namespace raft::runtime {

class InboundConn : public std::enable_shared_from_this<InboundConn> {
 public:
  // `stream`: accepted, its TLS handshake (if TLS) not run yet: Start() runs it.
  InboundConn(Transport* t, std::shared_ptr<PeerStream> stream);
  void Start();
  void Close();
  // Abandons the snapshot receive in progress, if any (its file is removed); later chunks
  // of that stream are answered with an abort. See Transport::ClaimReceive.
  void DropReceive(const std::string& why);

  // Chunks waiting for the receive thread and messages held behind them, in frame payload
  // bytes, past which reading pauses.
  // An honest sender keeps its window of chunks (1 MiB by default) in flight.
  static constexpr std::uint64_t kReceiveQueuedBytesMax = 16u << 20;

  // The snapshot receive in progress, if any. Receive-thread jobs only (see above).
  struct ReceiveSlot {
    std::unique_ptr<SnapshotReceiver> receiver;
  };

 private:
  void StartRead();
  // Handles decoded frames while the backlog allows, then reads on, or pauses
  // (read_paused_) with the rest left in the decoder.
  void Drain();
  // Drains again after a pause, once the backlog is under its limits.
  void Resume();
  // Chunks waiting for the disk, messages held behind them and answers not yet written
  // are at a limit (kReceiveQueuedBytesMax bytes, kOutFramesMax answers owed).
  bool Backlogged() const;
  bool HandleFrame(wire::Frame f);  // false: close the connection
  // Bad input from the authenticated peer: logged (rate-limited), counted
  // (OnPeerConnClosed); the caller closes. Returns false.
  bool CloseForBadInput(std::string_view why, const std::string& detail);
  bool HandleHandshake(const wire::Frame& f);
  bool HandleFinish(const wire::Frame& f);
  // Logs, sends HandshakeReject and closes after it; false.
  bool Reject(wire::RejectCode code, const std::string& reason);
  // Decodes a chunk and hands it to the receive thread.
  bool HandleChunk(wire::Frame&& f);
  // Back on the io thread: chunk number `job` (1-based) was written; `ack` answers it.
  void OnChunkWritten(std::uint64_t job, const wire::SnapshotChunkAck& ack, std::size_t bytes);
  // Hands a message to the node; false (the caller closes) when the node refuses it.
  bool Deliver(Message m);
  // Runs `job` on the receive thread with the slot; on this thread when that one has stopped.
  void OnReceiveThread(std::function<void(ReceiveSlot&)> job);
  // Queues one answer; an answer that cannot be framed closes the connection (false).
  bool SendFrame(wire::FrameType type, const Result<std::string>& payload, bool close_after);
  void StartWrite();

  Transport* t_;
  std::shared_ptr<PeerStream> stream_;
  // A dialer that never completes its handshakes (TLS, then ours) is cut.
  asio::steady_timer handshake_timer_;
  std::string remote_;
  std::vector<char> read_buf_;
  wire::FrameDecoder decoder_;
  // Handshake progress: the Handshake arrived and was answered (hello_ holds its payload,
  // listener_nonce_ our nonce, version_ the chosen version, peer_ the claimed dialer),
  // then the HandshakeFinish verified (handshaken_: peer_ is authenticated).
  bool hello_answered_ = false;
  bool handshaken_ = false;
  std::string hello_;
  std::string listener_nonce_;
  std::uint8_t version_ = 0;
  std::string peer_address_;
  NodeId peer_ = kNoNode;
  std::deque<std::string> out_;
  std::vector<std::string> writing_;  // non-empty only while write_active_
  bool write_active_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  std::shared_ptr<ReceiveSlot> slot_ = std::make_shared<ReceiveSlot>();
  // Chunks handed to the receive thread, those whose ack came back, and the payload bytes
  // of the ones still out and of the messages held behind them.
  std::uint64_t jobs_posted_ = 0;
  std::uint64_t jobs_done_ = 0;
  std::uint64_t queued_bytes_ = 0;
  // Messages that arrived while chunk `after_job` was still out: delivered when it is done.
  struct Held {
    std::uint64_t after_job;
    Message m;
    std::size_t bytes;  // its frame's payload, counted in queued_bytes_
  };
  std::deque<Held> held_;
  bool read_paused_ = false;  // Drain stopped at the backlog's limits; Resume goes on
  Status decode_status_;      // the decoder's error, acted on once the frames before it are handled
};

}  // namespace raft::runtime
