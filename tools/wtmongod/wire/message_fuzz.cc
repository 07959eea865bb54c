// libFuzzer target: ParseRequest must reject malformed input with MongoError, never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "wire/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    wtm::wire::Request r = wtm::wire::ParseRequest(data, size);
    // A parsed request must be replyable.
    std::string reply = wtm::wire::EncodeReply(r, 1, r.body.get());
    if (reply.size() < 16) __builtin_trap();
  } catch (const wtm::MongoError&) {
  }
  return 0;
}
