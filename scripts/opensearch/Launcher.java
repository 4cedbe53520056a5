// Launcher starts a real single-node OpenSearch from the jars that
// scripts/opensearch.sh fetches from Maven Central: the distribution's
// tarball is not on Maven Central, and its modules/ and plugins/ layout is
// not needed when the plugin classes are passed to the node directly.
//
//   java -cp 'LIB/*:CLASSES' Launcher HOME HTTP_PORT TRANSPORT_PORT
//
// Data and logs live under HOME. It listens on 127.0.0.1 only, and runs
// until SIGTERM, which closes the node (OpenSearch's threads are daemon
// threads: main must block).
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public class Launcher {
    // Node's constructor that takes plugin classes is protected.
    static final class PluginNode extends Node {
        PluginNode(Environment env, List<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Launcher HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "logagent-test")
                .put("node.name", "node-1")
                .put("network.host", "127.0.0.1")
                .put("http.port", args[1])
                .put("transport.port", args[2])
                .put("discovery.type", "single-node")
                // A test machine's disk may be fuller than the default
                // watermarks allow; a full disk is not what tests test.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
        Node node = new PluginNode(new Environment(settings, home.resolve("config")),
                List.of(Netty4Plugin.class, CommonAnalysisPlugin.class, PainlessPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
            stopped.countDown();
        }));
        node.start();
        System.out.println("opensearch started on 127.0.0.1:" + args[1]);
        stopped.await();
    }
}
