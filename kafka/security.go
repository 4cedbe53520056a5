package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/logagent/logagent/conf"
)

// This file is the one place that turns [kafka]'s tls_* and sasl_* keys
// into what the clients take: the franz-go producer, sarama, the franz-go
// client that reads topic limits, and check all connect the same way.

// FranzSecurity returns the kgo options for c's TLS and SASL (the agent's
// franz-go producer, and the console's live tail).
func FranzSecurity(c conf.Kafka) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tc, err := c.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("[kafka] TLS: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := saslMechanism(c); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// saslMechanism is franz-go's mechanism for c (nil: no SASL). sarama's
// SCRAM client wraps it too.
func saslMechanism(c conf.Kafka) sasl.Mechanism {
	user, pass := c.SASLUsername, c.SASLPassword.Reveal()
	switch c.SASLMechanism {
	case conf.SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case conf.SASLSCRAM256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case conf.SASLSCRAM512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// saramaSecurity sets cfg's TLS and SASL from c.
func saramaSecurity(cfg *sarama.Config, c conf.Kafka) error {
	tc, err := c.TLS.Config()
	if err != nil {
		return fmt.Errorf("[kafka] TLS: %w", err)
	}
	if tc != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = tc
	}
	if c.SASLMechanism == "" {
		return nil
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	// v1 (SaslAuthenticate requests, with error messages) from Kafka 1.0 on.
	cfg.Net.SASL.Version = sarama.SASLHandshakeV0
	if cfg.Version.IsAtLeast(sarama.V1_0_0_0) {
		cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	}
	cfg.Net.SASL.User = c.SASLUsername
	cfg.Net.SASL.Password = c.SASLPassword.Reveal()
	switch c.SASLMechanism {
	case conf.SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case conf.SASLSCRAM256, conf.SASLSCRAM512:
		cfg.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASLMechanism)
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mech: saslMechanism(c)} }
	}
	return nil
}

// scramClient is sarama's SCRAM conversation done by franz-go's SCRAM
// mechanism, so that both clients share one implementation (and the
// module needs no other SCRAM library).
type scramClient struct {
	mech sasl.Mechanism
	sess sasl.Session
	done bool
}

func (s *scramClient) Begin(_, _, _ string) error { return nil }

func (s *scramClient) Step(challenge string) (string, error) {
	if s.sess == nil {
		sess, first, err := s.mech.Authenticate(context.Background(), "")
		if err != nil {
			return "", err
		}
		s.sess = sess
		return string(first), nil
	}
	done, resp, err := s.sess.Challenge([]byte(challenge))
	if err != nil {
		return "", err
	}
	s.done = done
	return string(resp), nil
}

func (s *scramClient) Done() bool { return s.done }

// adminClient is the franz-go client that reads topic configurations
// (DescribeConfigs), connected as the producers are.
func adminClient(c conf.Kafka) (*kgo.Client, error) {
	sec, err := FranzSecurity(c)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID("logagent"), kgo.DisableClientMetrics()}, sec...)...)
}

// ExplainConn turns an error of connecting to the brokers into one line that
// names them and the setting to look at: a TLS handshake or a SASL
// authentication that failed. Other errors come back unchanged.
func ExplainConn(c conf.Kafka, err error) error {
	if err == nil {
		return nil
	}
	msg, brokers := err.Error(), strings.Join(c.Brokers, ",")
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(msg, x) {
				return true
			}
		}
		return false
	}
	switch {
	case has("certificate signed by unknown authority"):
		return fmt.Errorf("TLS handshake with %s failed: the broker's certificate is signed by an unknown authority; set [kafka] tls_ca_file to the CA that signs it (%w)", brokers, err)
	case has("certificate has expired", "not yet valid"):
		return fmt.Errorf("TLS handshake with %s failed: the broker's certificate has expired or is not valid yet; renew it on the broker (%w)", brokers, err)
	case has("x509: certificate is valid for", "x509: cannot validate certificate"):
		return fmt.Errorf("TLS handshake with %s failed: the broker's certificate is not for the name dialled; set [kafka] tls_server_name to a name it holds (%w)", brokers, err)
	case has("first record does not look like a TLS handshake"):
		return fmt.Errorf("TLS to %s failed: the broker does not speak TLS on that port; point [kafka] brokers at its SSL or SASL_SSL listener, or set tls = false (%w)", brokers, err)
	case has("remote error: tls:"):
		return fmt.Errorf("TLS handshake with %s failed: the broker refused the client certificate; check [kafka] tls_cert_file and tls_key_file (%w)", brokers, err)
	case c.SASLMechanism != "" && (errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, sarama.ErrSASLAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || has("SASL")):
		return fmt.Errorf("SASL %s authentication as %q with %s failed: check [kafka] sasl_username and sasl_password (or sasl_password_file), and that the broker enables %s on that listener (%w)",
			c.SASLMechanism, c.SASLUsername, brokers, c.SASLMechanism, err)
	case c.SASLMechanism != "" && has("EOF", "connection reset"):
		// Some brokers close the connection on a failed authentication
		// without saying why.
		return fmt.Errorf("%s closed the connection: if it was during SASL %s authentication as %q, check [kafka] sasl_username and sasl_password (or sasl_password_file) (%w)",
			brokers, c.SASLMechanism, c.SASLUsername, err)
	}
	return err
}
