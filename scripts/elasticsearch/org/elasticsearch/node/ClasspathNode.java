// ClasspathNode is a Node whose plugins are classes on the class path
// (see ClasspathPluginsService). In Elasticsearch's package because
// NodeConstruction and NodeServiceProvider are package-private.
package org.elasticsearch.node;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

public class ClasspathNode extends Node {
    public ClasspathNode(Environment env, List<Class<? extends Plugin>> plugins) {
        super(NodeConstruction.prepareConstruction(env, PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false),
                new NodeServiceProvider() {
                    @Override
                    PluginsService newPluginService(Environment e, PluginsLoader loader) {
                        return new ClasspathPluginsService(e.settings(), loader, plugins);
                    }
                }, true));
    }
}
