package sacsock.testmongo;

import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.exception.MongoServerException;
import de.bwaldvogel.mongo.wire.MongoDatabaseHandler;
import de.bwaldvogel.mongo.wire.MongoExceptionHandler;
import de.bwaldvogel.mongo.wire.MongoWireMessageEncoder;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import de.bwaldvogel.mongo.wire.MongoWireReplyEncoder;
import de.bwaldvogel.mongo.wire.message.ClientRequest;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;

/**
 * A MongoDB-wire server for the sacsock_actors MongoDB bridge tests: mongo-java-server's
 * in-memory backend, reporting MongoDB 4.4 (wire version 9, which current pymongo needs),
 * plus what the Go peer's legacy mgo driver needs: an answer to getnonce, command errors
 * over OP_QUERY as {ok: 0, errmsg, code} replies (not a closed connection), and the legacy
 * OP_KILL_CURSORS message. TTL indexes are honoured by a sweep once a second.
 *
 * Usage: java -cp ... sacsock.testmongo.Main [--host 127.0.0.1] [--port 27017]
 * Prints "listening on HOST:PORT" once bound; SIGTERM stops it.
 */
public final class Main {

    /** MongoDB 4.4 as the handshake reports it. */
    static final MongoVersion MONGO_4_4 = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    /** The memory backend with getnonce and command errors as replies. */
    static final class Backend extends MemoryBackend {
        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if ("getnonce".equalsIgnoreCase(command)) {
                Document nonce = new Document("nonce", Long.toHexString(ThreadLocalRandom.current().nextLong()));
                nonce.put("ok", 1.0);
                return nonce;
            }
            try {
                return super.handleCommand(channel, databaseName, command, query);
            } catch (MongoServerException e) {
                Document error = new Document("ok", 0.0);
                error.put("errmsg", e.getMessageWithoutErrorCode());
                if (e instanceof MongoServerError) {
                    MongoServerError se = (MongoServerError) e;
                    error.put("code", se.getCode());
                    if (se.getCodeName() != null) {
                        error.put("codeName", se.getCodeName());
                    }
                } else if ("ns not found".equals(e.getMessageWithoutErrorCode())) {
                    error.put("code", 26); // NamespaceNotFound, which drivers know to ignore on drop
                    error.put("codeName", "NamespaceNotFound");
                } else {
                    error.put("code", 8000);
                }
                return error;
            }
        }

        List<String> databaseNames() {
            return new ArrayList<>(listDatabaseNames());
        }
    }

    /** The stock decoder, plus the legacy kill-cursors message (opcode 2007, no reply). */
    static final class Decoder extends MongoWireProtocolHandler {
        private static final int OP_KILL_CURSORS = 2007;
        private final Backend backend;

        Decoder(Backend backend) {
            this.backend = backend;
        }

        @Override
        protected ClientRequest decode(ChannelHandlerContext ctx, ByteBuf buf) throws Exception {
            if (buf.readableBytes() >= 16 && buf.getIntLE(buf.readerIndex() + 12) == OP_KILL_CURSORS) {
                int length = buf.getIntLE(buf.readerIndex());
                if (buf.readableBytes() < length) {
                    return null; // wait for the rest
                }
                ByteBuf message = buf.readSlice(length);
                message.skipBytes(16 + 4); // header, ZERO
                int count = message.readIntLE();
                List<Long> ids = new ArrayList<>();
                for (int i = 0; i < count && message.readableBytes() >= 8; i++) {
                    ids.add(message.readLongLE());
                }
                backend.closeCursors(ids);
                return null;
            }
            return super.decode(ctx, buf);
        }
    }

    private Main() {
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 27017;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--host" -> host = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                    + "; usage: [--host H] [--port P]");
            }
        }
        Backend backend = new Backend();
        backend.version(MONGO_4_4);

        EventLoopGroup boss = new NioEventLoopGroup(1);
        EventLoopGroup workers = new NioEventLoopGroup(2);
        ChannelGroup clients = new DefaultChannelGroup("clients", workers.next());
        Channel server = new ServerBootstrap()
            .group(boss, workers)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 128)
            .option(ChannelOption.SO_REUSEADDR, Boolean.TRUE)
            .childOption(ChannelOption.TCP_NODELAY, Boolean.TRUE)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                public void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(new MongoWireReplyEncoder());
                    ch.pipeline().addLast(new MongoWireMessageEncoder());
                    ch.pipeline().addLast(new Decoder(backend));
                    ch.pipeline().addLast(new MongoDatabaseHandler(backend, clients));
                    ch.pipeline().addLast(new MongoExceptionHandler());
                }
            })
            .bind(new InetSocketAddress(host, port)).syncUninterruptibly().channel();

        ScheduledExecutorService sweeper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ttl-sweep");
            t.setDaemon(true);
            return t;
        });
        Channel sweepChannel = new EmbeddedChannel();
        sweeper.scheduleWithFixedDelay(() -> sweep(backend, sweepChannel), 1, 1, TimeUnit.SECONDS);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            sweeper.shutdownNow();
            server.close().syncUninterruptibly();
            clients.close().syncUninterruptibly();
            boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }));
        InetSocketAddress bound = (InetSocketAddress) server.localAddress();
        System.out.println("listening on " + bound.getHostString() + ":" + bound.getPort());
        System.out.flush();
        server.closeFuture().syncUninterruptibly();
    }

    /** Delete documents whose TTL-indexed date field is older than expireAfterSeconds. */
    @SuppressWarnings("unchecked")
    static void sweep(Backend backend, Channel channel) {
        try {
            for (String db : backend.databaseNames()) {
                Document collections = backend.handleCommand(channel, db, "listCollections",
                    new Document("listCollections", 1));
                for (Document coll : firstBatch(collections)) {
                    String name = (String) coll.get("name");
                    Document indexes = backend.handleCommand(channel, db, "listIndexes",
                        new Document("listIndexes", name));
                    for (Document index : firstBatch(indexes)) {
                        Object after = index.get("expireAfterSeconds");
                        Document key = (Document) index.get("key");
                        if (!(after instanceof Number) || key == null || key.size() != 1) {
                            continue;
                        }
                        String field = key.keySet().iterator().next();
                        Instant cutoff = Instant.now().minusMillis((long) (((Number) after).doubleValue() * 1000));
                        Document delete = new Document("delete", name);
                        delete.put("deletes", List.of(new Document("q",
                            new Document(field, new Document("$lt", cutoff))).append("limit", 0)));
                        backend.handleCommand(channel, db, "delete", delete);
                    }
                }
            }
        } catch (RuntimeException e) {
            System.err.println("ttl sweep failed: " + e);
        }
    }

    @SuppressWarnings("unchecked")
    private static List<Document> firstBatch(Document response) {
        Object cursor = response == null ? null : response.get("cursor");
        if (!(cursor instanceof Document)) {
            return List.of();
        }
        Object batch = ((Document) cursor).get("firstBatch");
        return batch instanceof List ? (List<Document>) batch : List.of();
    }
}
