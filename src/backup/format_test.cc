#include "backup/format.h"

#include <gtest/gtest.h>

namespace pbm::backup {
namespace {

TEST(BackupProgress, SumsReplsetsAndEstimatesTimeLeft) {
  BackupMeta b;
  b.status = "running";
  ReplsetMeta a, c;
  a.progress_bytes = 300 << 20;
  a.progress_total = 1000 << 20;
  a.copy_start_ts = 100;
  c.progress_bytes = 100 << 20;
  c.progress_total = 200 << 20;
  c.copy_start_ts = 102;
  b.replsets = {a, c};
  Progress p = BackupProgress(b, 110);  // 400 MiB in 10 s since the earliest start
  EXPECT_EQ(p.bytes_done, 400 << 20);
  EXPECT_EQ(p.bytes_total, 1200 << 20);
  EXPECT_DOUBLE_EQ(p.bytes_per_sec, (400 << 20) / 10.0);
  EXPECT_EQ(p.eta_secs, 20);
  EXPECT_EQ(ProgressLine(p), "400.00 MiB of 1.17 GiB (33%), 40.00 MiB/s, about 20 s left");
  // Before the copy started: no rate, no estimate.
  b.replsets = {ReplsetMeta{}};
  p = BackupProgress(b, 110);
  EXPECT_EQ(p.eta_secs, -1);
  EXPECT_EQ(ProgressLine(p), "0 B");
  // Done: all of it.
  b.status = "done";
  b.replsets = {a};
  EXPECT_EQ(BackupProgress(b, 110).bytes_done, 1000 << 20);
}

TEST(BackupMeta, ProgressAndEncryptionRoundTripThroughJson) {
  BackupMeta b;
  b.name = "2026-11-23T10:00:00Z";
  b.encryption = "AES256-GCM";
  b.encryption_key_check = "0123456789abcdef";
  ReplsetMeta r;
  r.progress_bytes = 5;
  r.progress_total = 9;
  r.copy_start_ts = 7;
  b.replsets = {r};
  Json j = b;
  EXPECT_EQ(j["encryption"]["key_check"], "0123456789abcdef");
  BackupMeta back = j.get<BackupMeta>();
  EXPECT_EQ(back.encryption, "AES256-GCM");
  EXPECT_EQ(back.encryption_key_check, "0123456789abcdef");
  EXPECT_EQ(back.replsets[0].progress_bytes, 5);
  EXPECT_EQ(back.replsets[0].progress_total, 9);
  EXPECT_EQ(back.replsets[0].copy_start_ts, 7);
  // Unencrypted backups carry no encryption field.
  EXPECT_FALSE(Json(BackupMeta{}).contains("encryption"));
}

}  // namespace
}  // namespace pbm::backup
