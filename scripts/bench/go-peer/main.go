// Go peer of the summary bench (scripts/bench/summary-hit.ts): GET
// /api/v1/fast/repositories/:repo_id/summary as the seed's Go service documents it
// (/work/shared/seed/go-service-spec.md, RepositoryHandler.GetRepositorySummary): Gin router, a
// Bearer JWT check, one Redis GET of "repo_summary:<id>" whose JSON is unmarshalled into the
// summary struct and written back with c.JSON and X-Cache: HIT; on a miss the row is read from
// Postgres, stored in Redis for 5 minutes and sent with X-Cache: MISS.
//
// Built from Debian's packages only, in GOPATH mode (nothing is downloaded):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off GOPROXY=off go build -o <tmp>/go-peer scripts/bench/go-peer/main.go
//
// Differences from the seed, stated: Redis through redigo (Debian has no go-redis v9), pgx v4
// (Debian has no v5), golang-jwt v4 (what Debian ships at github.com/golang-jwt/jwt). No request
// log, metrics or rate limiter: the spec lists such middleware but does not describe it.
//
// Configuration (environment): LISTEN (127.0.0.1:0; the bound address is printed as
// "listening on <addr>"), JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE, REDIS_ADDR (127.0.0.1:6379),
// REDIS_KEY_PREFIX (prepended to "repo_summary:<id>"), DATABASE_URL.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt"
	"github.com/gomodule/redigo/redis"
	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

// RepositorySummary is the seed's response shape (the Worker serves the same fields).
type RepositorySummary struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	FullName       string  `json:"full_name"`
	Language       *string `json:"language"`
	Stars          int64   `json:"stars"`
	Forks          int64   `json:"forks"`
	LastUpdated    string  `json:"last_updated"`
	AnalysisStatus string  `json:"analysis_status"`
	InsightCount   int64   `json:"insight_count"`
	TrendingScore  float64 `json:"trending_score"`
}

const summarySQL = `SELECT id::text, name, full_name, language, stars, forks,
  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  analysis_status::text, insight_count, round(trending_score::numeric, 2)::float8
FROM repositories WHERE id = $1`

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

type server struct {
	pool      *redis.Pool
	db        *pgxpool.Pool
	prefix    string
	secret    []byte
	issuer    string
	audience  string
	jwtParser *jwt.Parser
}

// auth: HS256 only, signature, exp/nbf/iat (RegisteredClaims.Valid), then iss and aud.
func (s *server) auth(c *gin.Context) {
	header := c.GetHeader("Authorization")
	if !strings.HasPrefix(header, "Bearer ") {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "missing bearer token"})
		return
	}
	claims := &jwt.RegisteredClaims{}
	_, err := s.jwtParser.ParseWithClaims(strings.TrimPrefix(header, "Bearer "), claims, func(t *jwt.Token) (interface{}, error) {
		return s.secret, nil
	})
	if err == nil && !claims.VerifyIssuer(s.issuer, true) {
		err = errors.New("bad issuer")
	}
	if err == nil && !claims.VerifyAudience(s.audience, true) {
		err = errors.New("bad audience")
	}
	if err != nil {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "invalid token"})
		return
	}
	c.Set("sub", claims.Subject)
	c.Next()
}

func (s *server) getSummary(ctx context.Context, id string) (*RepositorySummary, error) {
	var r RepositorySummary
	err := s.db.QueryRow(ctx, summarySQL, id).Scan(&r.ID, &r.Name, &r.FullName, &r.Language, &r.Stars,
		&r.Forks, &r.LastUpdated, &r.AnalysisStatus, &r.InsightCount, &r.TrendingScore)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *server) summary(c *gin.Context) {
	repoID := c.Param("repo_id")
	cacheKey := fmt.Sprintf("%srepo_summary:%s", s.prefix, repoID)

	conn := s.pool.Get()
	cached, err := redis.Bytes(conn.Do("GET", cacheKey))
	conn.Close()
	if err == nil {
		var summary RepositorySummary
		if err := json.Unmarshal(cached, &summary); err == nil {
			c.Header("X-Cache", "HIT")
			c.JSON(http.StatusOK, summary)
			return
		}
	}

	summary, err := s.getSummary(c.Request.Context(), repoID)
	if err != nil {
		log.Printf("summary %s: %v", repoID, err)
		c.JSON(http.StatusInternalServerError, gin.H{"error": "Internal server error"})
		return
	}
	if summary == nil {
		c.JSON(http.StatusNotFound, gin.H{"error": "Repository not found"})
		return
	}
	if data, err := json.Marshal(summary); err == nil {
		conn := s.pool.Get()
		if _, err := conn.Do("SET", cacheKey, data, "EX", 300); err != nil {
			log.Printf("redis set %s: %v", cacheKey, err)
		}
		conn.Close()
	}
	c.Header("X-Cache", "MISS")
	c.JSON(http.StatusOK, summary)
}

func main() {
	secret := os.Getenv("JWT_SECRET")
	if secret == "" {
		log.Fatal("JWT_SECRET is required")
	}
	redisAddr := env("REDIS_ADDR", "127.0.0.1:6379")
	pool := &redis.Pool{
		MaxIdle:     64,
		IdleTimeout: 5 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", redisAddr, redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
		},
	}
	defer pool.Close()
	probe := pool.Get()
	if _, err := probe.Do("PING"); err != nil {
		log.Fatalf("redis %s: %v", redisAddr, err)
	}
	probe.Close()

	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatalf("DATABASE_URL: %v", err)
	}
	cfg.MaxConns = 30
	cfg.MinConns = 1
	db, err := pgxpool.ConnectConfig(context.Background(), cfg)
	if err != nil {
		log.Fatalf("postgres: %v", err)
	}
	defer db.Close()

	s := &server{
		pool:      pool,
		db:        db,
		prefix:    os.Getenv("REDIS_KEY_PREFIX"),
		secret:    []byte(secret),
		issuer:    os.Getenv("JWT_ISSUER"),
		audience:  os.Getenv("JWT_AUDIENCE"),
		jwtParser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})),
	}

	gin.SetMode(gin.ReleaseMode)
	router := gin.New()
	router.Use(gin.Recovery())
	router.GET("/ping", func(c *gin.Context) { c.String(http.StatusOK, "pong") })
	api := router.Group("/api/v1/fast/repositories", s.auth)
	api.GET("/:repo_id/summary", s.summary)

	ln, err := net.Listen("tcp", env("LISTEN", "127.0.0.1:0"))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on %s\n", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serve: %v", err)
		}
	}()
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGINT, syscall.SIGTERM)
	<-quit
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
