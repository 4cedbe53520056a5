package agent

import (
	"net"
	"strings"
	"time"

	"github.com/logagent/logagent/utils"
)

// dialReason dials each endpoint (host:port, or a URL) and says what
// fails: "127.0.0.1:2379: connection refused". Empty when one answers: the
// trouble is then above TCP.
func dialReason(endpoints []string, timeout time.Duration) string {
	var why []string
	for _, ep := range endpoints {
		hp := ep
		if i := strings.Index(hp, "://"); i >= 0 {
			hp = hp[i+3:]
		}
		c, err := net.DialTimeout("tcp", hp, timeout)
		if err == nil {
			c.Close()
			return ""
		}
		why = append(why, hp+": "+utils.PlainNet(err))
	}
	return strings.Join(why, "; ")
}
