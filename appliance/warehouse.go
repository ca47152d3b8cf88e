package appliance

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/causality-io/causality/appliance/bus"
	"github.com/causality-io/causality/appliance/config"
	"github.com/causality-io/causality/appliance/warehouse"
	"github.com/causality-io/causality/appliance/warehouse/localdest"
	"github.com/causality-io/causality/appliance/warehouse/s3dest"
	"github.com/causality-io/causality/appliance/warehouse/trino"
)

// How often the lake's housekeeping runs. Compaction and retention work on
// whole closed hours, so a few minutes of delay changes nothing for readers.
const (
	compactEvery   = 5 * time.Minute
	retentionEvery = 10 * time.Minute
)

// OpenDestination opens the lake that --warehouse-url names.
func OpenDestination(cfg *config.Config) (warehouse.Destination, error) {
	loc, err := cfg.Warehouse()
	if err != nil {
		return nil, fmt.Errorf("--warehouse-url: %w", err)
	}
	switch loc.Kind {
	case config.WarehouseS3:
		d, err := s3dest.New(s3dest.Options{
			Endpoint:   cfg.S3Endpoint,
			AccessKey:  cfg.S3AccessKey,
			SecretKey:  cfg.S3SecretKey,
			Region:     cfg.S3Region,
			Insecure:   cfg.S3Insecure,
			Addressing: cfg.S3Addressing,
			Bucket:     loc.Bucket,
			Prefix:     loc.Prefix,
		})
		if err != nil {
			return nil, fmt.Errorf("open warehouse %s: %w", cfg.WarehouseURL, err)
		}
		return d, nil
	default:
		d, err := localdest.New(loc.Dir)
		if err != nil {
			return nil, fmt.Errorf("open warehouse %s: %w", loc.Dir, err)
		}
		return d, nil
	}
}

// startWarehouse starts the sink and the lake's housekeeping on the
// background context. The sink's final flush is bounded by the shutdown
// timeout, which Stop passes as a.stopCtx.
func (a *Appliance) startWarehouse(ctx context.Context) error {
	dest, err := OpenDestination(a.cfg)
	if err != nil {
		return err
	}
	if err := dest.Check(ctx); err != nil {
		// Not fatal: events wait in the stream until the lake is back,
		// and the sink says so in /readyz and the log.
		a.log.Error("warehouse not reachable at start; events are kept in the stream until it is", "destination", dest.String(), "err", err)
	}
	opts := warehouse.SinkOptions{
		FlushInterval:    a.cfg.FlushInterval,
		FlushMaxEvents:   a.cfg.FlushMaxEvents,
		FlushMaxBytes:    int64(a.cfg.FlushMaxBytes),
		HeaderReceivedAt: bus.HeaderReceivedAt,
		Encode:           warehouse.EncodeOptions{CreatedBy: "causality"},
	}
	cons, err := a.bus.EnsureConsumer(ctx, warehouse.ConsumerConfig(bus.WarehouseConsumer, opts))
	if err != nil {
		return err
	}
	info, err := a.bus.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		return fmt.Errorf("warehouse: stream info: %w", err)
	}
	log := a.log.With("component", "warehouse")
	m := warehouse.NewMetrics(a.metrics.Registry, dest.String())
	a.dest = dest
	a.sink = warehouse.NewSink(cons, a.bus.Conn(), dest, warehouse.StreamID(info.CachedInfo()), opts, m, log)
	a.sink.RegisterLag(a.metrics.Registry)

	go func() {
		if err := a.sink.Run(context.WithoutCancel(ctx)); err != nil {
			log.Error("warehouse sink stopped", "err", err)
		}
	}()

	a.startHousekeeping(dest, m, log)
	return nil
}

// stopWarehouse ends the sink, which flushes what it holds, and waits for it.
func (a *Appliance) stopWarehouse(ctx context.Context) error {
	if a.sink == nil {
		return nil
	}
	return a.sink.Stop(ctx)
}

// WriteTrino prints the Trino catalog file and DDL for the warehouse cfg
// names (`causality trino`).
func WriteTrino(w io.Writer, cfg *config.Config) error {
	loc, err := cfg.Warehouse()
	if err != nil {
		return fmt.Errorf("--warehouse-url: %w", err)
	}
	tc := trino.Config{WarehouseURL: "file://" + loc.Dir}
	if loc.Kind == config.WarehouseS3 {
		tc = trino.Config{
			WarehouseURL: cfg.WarehouseURL,
			S3Endpoint:   cfg.S3Endpoint,
			S3Region:     cfg.S3Region,
			S3AccessKey:  cfg.S3AccessKey,
			S3Insecure:   cfg.S3Insecure,
			// Auto addressing uses path style for any endpoint but AWS's.
			S3PathStyle: cfg.S3Addressing == "path" || (cfg.S3Addressing == "auto" && cfg.S3Endpoint != ""),
		}
	}
	return trino.Render(w, tc)
}
