// Errors carried back to clients as mongod does: {ok: 0, errmsg, code, codeName}.
#pragma once

#include <stdexcept>
#include <string>

namespace wtm {

// The subset of mongod's error codes (src/mongo/base/error_codes.yml) that wtmongod returns.
enum class ErrorCode : int {
  kInternalError = 1,
  kBadValue = 2,
  kNoSuchKey = 4,
  kGraphContainsCycle = 5,
  kHostUnreachable = 6,
  kHostNotFound = 7,
  kUnknownError = 8,
  kFailedToParse = 9,
  kCannotMutateObject = 10,
  kUserNotFound = 11,
  kUnsupportedFormat = 12,
  kUnauthorized = 13,
  kAuthenticationFailed = 18,
  kRoleNotFound = 31,
  kTypeMismatch = 14,
  kOverflow = 15,
  kInvalidLength = 16,
  kInvalidIdField = 53,
  kProtocolError = 17,
  kIllegalOperation = 20,
  kEmptyArrayOperation = 21,
  kInvalidBSON = 22,
  kAlreadyInitialized = 23,
  kLockTimeout = 24,
  kNamespaceNotFound = 26,
  kIndexNotFound = 27,
  kPathNotViable = 28,
  kNonExistentPath = 29,
  kInvalidPath = 30,
  kConflictingUpdateOperators = 40,
  kCursorNotFound = 43,
  kNamespaceExists = 48,
  kMaxTimeMSExpired = 50,
  kDollarPrefixedFieldName = 52,
  kCommandNotFound = 59,
  kImmutableField = 66,
  kCannotCreateIndex = 67,
  kIndexAlreadyExists = 68,
  kInvalidOptions = 72,
  kInvalidNamespace = 73,
  kNodeNotFound = 74,
  kInvalidReplicaSetConfig = 93,
  kMechanismUnavailable = 334,
  kInconsistentReplicaSetNames = 95,
  kNotYetInitialized = 94,
  kWriteConcernFailed = 64,
  kOperationFailed = 96,
  kNoReplicationEnabled = 76,
  kInterruptedAtShutdown = 11600,
  kInterruptedDueToReplStateChange = 11602,
  kNewReplicaSetConfigurationIncompatible = 103,
  kIndexOptionsConflict = 85,
  kIndexKeySpecsConflict = 86,
  kCannotIndexParallelArrays = 171,
  kNotWritablePrimary = 10107,
  kNotPrimaryNoSecondaryOk = 13435,
  kDuplicateKey = 11000,
  kBackupCursorOpenConflictWithCheckpoint = 50915,
  kQueryExceededMemoryLimitNoDiskUseAllowed = 292,
  kLocation = 0,
};

// Name used in replies ("codeName").
const char* CodeName(ErrorCode code);

class MongoError : public std::runtime_error {
 public:
  MongoError(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  // Numeric codes that have no enumerator (mongod's "Location" assertions).
  MongoError(int code, const std::string& msg)
      : std::runtime_error(msg), code_(static_cast<ErrorCode>(code)) {}
  ErrorCode code() const { return code_; }
  int numeric() const { return static_cast<int>(code_); }

 private:
  ErrorCode code_;
};

}  // namespace wtm
