package agent

import "go.uber.org/zap"

// nopZap silences the etcd client's own zap logger: the agent logs what
// matters about etcd itself, with slog.
func nopZap() *zap.Logger { return zap.NewNop() }
