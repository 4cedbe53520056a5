package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secPassword = "e2e-Pa55-never-shown"

// pki is the certificates of the security test, made with openssl as an
// operator would.
type pki struct {
	dir                 string
	ca, otherCA         string // CA certificates
	server, serverKey   string // for Kafka and etcd: 127.0.0.1 and localhost
	keystore            string // Kafka's PEM keystore: the server key, then its certificate
	client, clientKey   string // a client certificate (CN agent)
	expired, expiredKey string // a client certificate that expired yesterday
}

func makePKI(t *testing.T) *pki {
	t.Helper()
	d := t.TempDir()
	p := &pki{dir: d}
	f := func(name string) string { return filepath.Join(d, name) }
	ssl := func(args ...string) {
		t.Helper()
		if _, err := command(time.Minute, nil, "openssl", args...); err != nil {
			t.Fatal(err)
		}
	}
	ca := func(name string) string {
		ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f(name+"-key.pem"), "-out", f(name+".pem"),
			"-days", "2", "-subj", "/CN="+name)
		return f(name + ".pem")
	}
	p.ca, p.otherCA = ca("test-ca"), ca("other-ca")
	os.WriteFile(f("ext.cnf"), []byte("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"), 0o600)
	leaf := func(name string) (string, string) {
		ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f(name+"-key.pem"), "-out", f(name+".csr"), "-subj", "/CN="+name)
		ssl("x509", "-req", "-in", f(name+".csr"), "-CA", p.ca, "-CAkey", f("test-ca-key.pem"), "-CAcreateserial",
			"-out", f(name+".pem"), "-days", "2", "-extfile", f("ext.cnf"))
		return f(name + ".pem"), f(name + "-key.pem")
	}
	p.server, p.serverKey = leaf("server")
	p.client, p.clientKey = leaf("agent")
	key, _ := os.ReadFile(p.serverKey)
	cert, _ := os.ReadFile(p.server)
	p.keystore = f("server-keystore.pem")
	os.WriteFile(p.keystore, append(key, cert...), 0o600)
	// openssl x509 cannot date a certificate in the past; openssl ca can.
	os.WriteFile(f("ca.cnf"), []byte(fmt.Sprintf(`[ca]
default_ca = test
[test]
database = %s
new_certs_dir = %s
serial = %s
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
`, f("index.txt"), d, f("serial"))), 0o600)
	os.WriteFile(f("index.txt"), nil, 0o600)
	os.WriteFile(f("serial"), []byte("1000\n"), 0o600)
	ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("expired-key.pem"), "-out", f("expired.csr"), "-subj", "/CN=agent")
	ssl("ca", "-batch", "-config", f("ca.cnf"), "-cert", p.ca, "-keyfile", f("test-ca-key.pem"), "-in", f("expired.csr"),
		"-out", f("expired.pem"), "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext", "-extfile", f("ext.cnf"))
	p.expired, p.expiredKey = f("expired.pem"), f("expired-key.pem")
	return p
}

// TestSecureOperatorWorkflow: a real Kafka with a SASL_SSL listener (PLAIN
// from the JAAS config, SCRAM users made with kafka-configs) and an SSL
// listener that requires client certificates, a real etcd with TLS, client
// certificates and authentication. For both clients, etcdctl put → lines
// → kafka-console-consumer with the client properties, over SCRAM-SHA-512
// with TLS and over mutual TLS. A wrong password, an unknown CA and an
// expired client certificate: a clear error in the log, nothing lost,
// delivery resumes once the setting is fixed and the agent restarted.
func TestSecureOperatorWorkflow(t *testing.T) {
	needE2E(t)
	p := makePKI(t)
	saslPort, sslPort := freePorts(t, 1), freePorts(t, 1)
	k := startKafkaEnv(t, 1, func(base, controller int) []string {
		return []string{"KAFKA_EXTRA_PROPERTIES=" + strings.Join([]string{
			fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d", base, controller, saslPort, sslPort),
			fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,SSL://127.0.0.1:%d", base, saslPort, sslPort),
			"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL",
			"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
			`listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_agent="` + secPassword + `";`,
			"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
			"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
			"ssl.keystore.type=PEM", "ssl.keystore.location=" + p.keystore,
			"ssl.truststore.type=PEM", "ssl.truststore.location=" + p.ca,
			"listener.name.ssl.ssl.client.auth=required",
		}, "\n")}
	})
	k.logged(time.Minute, "tool", "kafka.admin.ConfigCommand", "--bootstrap-server", k.bootstrap, "--alter",
		"--entity-type", "users", "--entity-name", "agent",
		"--add-config", "SCRAM-SHA-512=[password="+secPassword+"]")
	sasl, mtls := "127.0.0.1:"+strconv.Itoa(saslPort), "127.0.0.1:"+strconv.Itoa(sslPort)

	tlsEnv := []string{"LOGAGENT_ETCD_TLS_CERT=" + p.server, "LOGAGENT_ETCD_TLS_KEY=" + p.serverKey, "LOGAGENT_ETCD_TLS_CA=" + p.ca,
		"ETCDCTL_CACERT=" + p.ca, "ETCDCTL_CERT=" + p.client, "ETCDCTL_KEY=" + p.clientKey}
	e := startEtcdEnv(t, tlsEnv)
	e.ctl("user", "add", "root:"+secPassword)
	e.ctl("user", "grant-role", "root", "root")
	e.ctl("auth", "enable")
	e.env = append(e.env, "ETCDCTL_USER=root:"+secPassword)

	pw := filepath.Join(p.dir, "secret")
	os.WriteFile(pw, []byte(secPassword+"\n"), 0o600)
	etcdINI := fmt.Sprintf("[etcd]\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\nusername = root\npassword_file = %s\n",
		p.ca, p.client, p.clientKey, pw)
	scramINI := func(ca, pass string) string {
		return fmt.Sprintf("[kafka]\ntls = true\ntls_ca_file = %s\nsasl_mechanism = SCRAM-SHA-512\nsasl_username = agent\nsasl_password = %s\n", ca, pass)
	}
	mtlsINI := func(ca, cert, key string) string {
		return fmt.Sprintf("[kafka]\ntls = true\ntls_ca_file = %s\ntls_cert_file = %s\ntls_key_file = %s\n", ca, cert, key)
	}
	props := filepath.Join(p.dir, "client.properties")
	os.WriteFile(props, []byte(fmt.Sprintf("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"+
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"agent\" password=\"%s\";\n"+
		"ssl.truststore.type=PEM\nssl.truststore.location=%s\n", secPassword, p.ca)), 0o600)

	var logs []string
	// ship runs an agent with ini, collects a new file to topic and checks
	// what the console consumer reads; bad, when set, is a wrong setting
	// tried first: its error must say want, and its lines wait for the
	// agent restarted with ini on the same data_dir.
	ship := func(t *testing.T, client, topic, brokers, ini, bad, want string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "app.log")
		rev := e.put("/logagent/"+host+"/collect_config", fmt.Sprintf(`[{"path": %q, "topic": %q}]`, path, topic))
		var recs []consoleRecord
		if bad != "" {
			a := startAgentWith(t, dir, client, []string{brokers}, e.endpoint, etcdINI+bad+"[agent]\nshutdown_timeout = 1s\n")
			a.applied(rev)
			recs = appendLines(t, path, line{"while the setting is wrong", "\n"})
			a.waitLog(30*time.Second, want)
			a.stop()
			data, _ := os.ReadFile(a.logPath)
			logs = append(logs, string(data))
		}
		a := startAgentWith(t, dir, client, []string{brokers}, e.endpoint, etcdINI+ini)
		if bad == "" {
			a.applied(rev)
		}
		recs = append(recs, appendLines(t, path, line{"over " + topic, "\n"}, line{"second", "\n"})...)
		checkRecords(t, topic, k.consumeFrom(sasl, topic, len(recs), 20*time.Second, "--consumer.config", props), recs)
		a.stop()
		data, _ := os.ReadFile(a.logPath)
		logs = append(logs, string(data))
	}
	for i, client := range clients {
		t.Run(client, func(t *testing.T) {
			ship(t, client, "scram_"+strings.ReplaceAll(client, "-", "_"), sasl, scramINI(p.ca, secPassword), "", "")
			ship(t, client, "mtls_"+strings.ReplaceAll(client, "-", "_"), mtls, mtlsINI(p.ca, p.client, p.clientKey), "", "")
			c := strings.ReplaceAll(client, "-", "_")
			ship(t, client, "wrong_password_"+c, sasl, scramINI(p.ca, secPassword), scramINI(p.ca, "wrong-"+secPassword),
				"check [kafka] sasl_username and sasl_password")
			// The TLS failures with one client each.
			if i == 0 {
				ship(t, client, "unknown_ca", sasl, scramINI(p.ca, secPassword), scramINI(p.otherCA, secPassword),
					"signed by an unknown authority; set [kafka] tls_ca_file")
			} else {
				ship(t, client, "expired_cert", mtls, mtlsINI(p.ca, p.client, p.clientKey), mtlsINI(p.ca, p.expired, p.expiredKey),
					"the broker refused the client certificate; check [kafka] tls_cert_file and tls_key_file")
			}
		})
	}
	for _, l := range logs {
		if strings.Contains(l, secPassword) {
			t.Fatalf("the password shows in the agent's log:\n%s", l)
		}
	}
}
