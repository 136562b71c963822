#include "core/mutation.h"

namespace raft::mutation {
#ifdef RAFT_MUTATIONS
Kind g_active = Kind::kNone;
#endif
}  // namespace raft::mutation
