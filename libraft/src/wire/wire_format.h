// Constants of the wire protocol specified in docs/wire-protocol.md. Every number the
// grammar mentions is defined here, once; the codecs and the spec must agree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raft::wire {

// Frame header: magic:u8[4] version:u8 type:u8 flags:u16 payload_len:u32
//               payload_crc:u32 header_crc:u32
inline constexpr std::size_t kFrameHeaderBytes = 20;
inline constexpr std::size_t kMagicBytes = 4;
inline constexpr unsigned char kMagic[kMagicBytes] = {0x52, 0x41, 0x46, 0x54};  // "RAFT"
// Byte offsets of the header fields.
inline constexpr std::size_t kVersionOffset = 4;
inline constexpr std::size_t kTypeOffset = 5;
inline constexpr std::size_t kFlagsOffset = 6;
inline constexpr std::size_t kPayloadLenOffset = 8;
inline constexpr std::size_t kPayloadCrcOffset = 12;
inline constexpr std::size_t kHeaderCrcOffset = 16;  // CRC32C of header bytes [0, 16)

// Protocol versions this implementation speaks. Handshake frames (types 1-3) always
// carry version 1. Version 2 is the mutual challenge-response handshake (section 4.1);
// version 1 (a static, replayable proof) is no longer spoken. Version 3 adds the layout
// form of a snapshot stream (section 4.3, kChunkFlagLayout); 2 and 3 interoperate.
inline constexpr std::uint8_t kProtocolVersionMin = 2;
inline constexpr std::uint8_t kProtocolVersionMax = 3;
// The first version whose snapshot streams may be in layout form.
inline constexpr std::uint8_t kProtocolVersionLayout = 3;
// Version 4 is a host of many groups' (section 4.4): group frames only, and heartbeats
// with kMessageFlagQuiesce. A transport speaks either [kProtocolVersionMin,
// kProtocolVersionMax] (raft::Node) or exactly kProtocolVersionHost (a host); the two
// never interoperate. raft::Node never sets the quiesce flag (it refuses
// Config::quiesce), and a RaftMessage frame may never carry it.
inline constexpr std::uint8_t kProtocolVersionHost = 4;
inline constexpr std::uint8_t kProtocolVersion = kProtocolVersionMax;
inline constexpr std::uint8_t kHandshakeFrameVersion = 1;

// Default limit on a frame's payload; the decoder's caller may choose another.
inline constexpr std::uint32_t kFramePayloadBytesMaxDefault = 64u << 20;
// Limit on the payload of each of the first kHandshakeFramesIn frames a listener reads
// on a connection (Handshake, HandshakeFinish: unauthenticated, at most about 1.6 KiB)
// and of the first frame a dialer reads (HandshakeAck or HandshakeReject). Security
// review F-11: a stranger may not make a node buffer 64 MiB before it has proved anything.
inline constexpr std::uint32_t kFirstFramePayloadBytesMax = 4096;
inline constexpr std::size_t kHandshakeFramesIn = 2;

enum class FrameType : std::uint8_t {
  kHandshake = 1,
  kHandshakeAck = 2,
  kHandshakeReject = 3,
  kRaftMessage = 4,
  kSnapshotChunk = 5,
  kSnapshotChunkAck = 6,
  kHandshakeFinish = 7,
  // Version 4 only (section 4.4); types 4-6 are refused on version 4.
  kGroupMessage = 8,
  kGroupSnapshotChunk = 9,
  kGroupSnapshotChunkAck = 10,
  kHostBeat = 11,
  kHostBeatAck = 12,
};
// The highest frame type of versions 2-3 (the Payload variant of payload.h covers 1..7).
inline constexpr std::uint8_t kFrameTypeMax = 7;
inline constexpr std::uint8_t kGroupFrameTypeMin = 8;
inline constexpr std::uint8_t kGroupFrameTypeMax = 12;

// host_beat := count:u32 beat[count];  beat := group term commit read_seq flags:u8
inline constexpr std::size_t kBeatBytes = 8 + 8 + 8 + 8 + 1;
// host_beat_ack := count:u32 beat_ack[count];  beat_ack := group term read_seq
inline constexpr std::size_t kBeatAckBytes = 8 + 8 + 8;
inline constexpr std::uint32_t kBeatsPerFrameMax = 1u << 20;
inline constexpr std::uint8_t kBeatFlagQuiesce = 1u << 0;

// raft_message limits.
inline constexpr std::uint32_t kEntriesPerMessageMax = 1u << 20;
inline constexpr std::uint32_t kContextBytesMax = 64u << 10;
inline constexpr std::uint32_t kConfNodesMax = 4096;
inline constexpr std::uint8_t kMessageFlagReject = 1u << 0;
inline constexpr std::uint8_t kMessageFlagCampaignTransfer = 1u << 1;
inline constexpr std::uint8_t kMessageFlagQuiesce = 1u << 2;  // kHeartbeat in a GroupMessage only
// type flags 8*u64 context_len entry_count snapshot(index term voters_n learners_n)
inline constexpr std::size_t kMessageFixedBytes = 1 + 1 + 8 * 8 + 4 + 4 + (8 + 8 + 4 + 4);
// term index type data_len
inline constexpr std::size_t kEntryFixedBytes = 8 + 8 + 1 + 4;

// Handshake limits.
inline constexpr std::uint32_t kClusterIdBytesMax = 255;
inline constexpr std::uint32_t kAuthBytesMax = 1024;
inline constexpr std::uint32_t kAddressBytesMax = 255;
inline constexpr std::uint32_t kReasonBytesMax = 1024;
// Version 2 handshake (section 4.1): nonces and HMAC-SHA256 proofs.
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kProofBytes = 32;
// hello:bytes(4096) in the transcript: a Handshake payload fits a first frame.
inline constexpr std::uint32_t kHelloBytesMax = kFirstFramePayloadBytesMax;

// snapshot_chunk: snapshot_index snapshot_term offset flags data_len, then the data.
inline constexpr std::size_t kSnapshotChunkFixedBytes = 8 + 8 + 8 + 1 + 4;
// snapshot_chunk flags and snapshot_chunk_ack status values.
inline constexpr std::uint8_t kChunkFlagLast = 1u << 0;
// The stream is in layout form (protocol version 3 and later); on every chunk of it.
inline constexpr std::uint8_t kChunkFlagLayout = 1u << 1;
inline constexpr std::uint8_t kChunkAckOk = 0;
inline constexpr std::uint8_t kChunkAckAbort = 1;

}  // namespace raft::wire
