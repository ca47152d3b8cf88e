package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	causalityv1 "github.com/causality-io/causality/gen/causality/v1"
)

// eventGen makes envelopes that look like a shop app's traffic: a few hundred devices with
// fixed device contexts, each in a session (correlation id), sending a weighted mix of screen
// views, button taps, add-to-carts, purchases and custom events with typed params. It is
// seeded, so one run's bodies match the next's except for ids and timestamps.
type eventGen struct {
	rng     *rand.Rand
	app     string
	devices []device
	now     time.Time
}

type device struct {
	id      string
	session string
	ctx     *causalityv1.DeviceContext
}

func newEventGen(app string, seed uint64, now time.Time) *eventGen {
	g := &eventGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), app: app, now: now}
	for i := range 500 {
		g.devices = append(g.devices, device{
			id:      fmt.Sprintf("dev-%08x", g.rng.Uint32()),
			session: fmt.Sprintf("sess-%d-%06x", i, g.rng.Uint32()&0xffffff),
			ctx:     g.deviceContext(),
		})
	}
	return g
}

var (
	screens     = []string{"Home", "Search", "ProductList", "ProductDetail", "Cart", "Checkout", "Profile", "Settings", "OrderHistory"}
	buttons     = []string{"buy_now", "add_to_cart", "search_submit", "filter_apply", "checkout_continue", "login", "share", "favorite"}
	products    = []string{"Trail Running Shoes", "Espresso Grinder", "Noise Cancelling Headphones", "Linen Shirt", "Yoga Mat", "Cast Iron Pan", "Desk Lamp", "Backpack 28L"}
	categories  = []string{"footwear", "kitchen", "audio", "apparel", "sports", "home", "office", "travel"}
	customNames = []string{"video_play", "share_sheet_open", "notification_open", "search_performed", "coupon_applied", "review_submitted"}
	currencies  = []string{"USD", "EUR", "GBP"}
	locales     = []string{"en_US", "de_DE", "fr_FR", "en_GB", "es_ES", "ja_JP"}
	timezones   = []string{"America/New_York", "Europe/Berlin", "Europe/Paris", "Europe/London", "Europe/Madrid", "Asia/Tokyo"}
	payments    = []string{"card", "apple_pay", "google_pay", "paypal"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (g *eventGen) deviceContext() *causalityv1.DeviceContext {
	r := g.rng
	dc := &causalityv1.DeviceContext{
		AppVersion:  fmt.Sprintf("4.%d.%d", r.IntN(6), r.IntN(10)),
		BuildNumber: fmt.Sprint(4000 + r.IntN(600)),
		Locale:      pick(r, locales),
		Timezone:    pick(r, timezones),
		NetworkType: pick(r, []causalityv1.NetworkType{causalityv1.NetworkType_NETWORK_TYPE_WIFI, causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_4G, causalityv1.NetworkType_NETWORK_TYPE_CELLULAR_5G}),
		SdkVersion:  "1.8.2",
		IsEmulator:  r.IntN(50) == 0,
	}
	switch r.IntN(10) {
	case 0, 1, 2, 3: // iOS
		dc.Platform, dc.Manufacturer = causalityv1.Platform_PLATFORM_IOS, "Apple"
		dc.DeviceModel = pick(r, []string{"iPhone15,2", "iPhone16,1", "iPhone14,7", "iPad13,18"})
		dc.OsVersion = fmt.Sprintf("17.%d", r.IntN(6))
		dc.ScreenWidth, dc.ScreenHeight = 1179, 2556
		dc.Carrier = pick(r, []string{"Verizon", "T-Mobile", "Vodafone", ""})
	case 4, 5, 6, 7, 8: // Android
		dc.Platform = causalityv1.Platform_PLATFORM_ANDROID
		dc.Manufacturer = pick(r, []string{"Samsung", "Google", "Xiaomi", "OnePlus"})
		dc.DeviceModel = pick(r, []string{"SM-S918B", "Pixel 8", "2201116SG", "CPH2449"})
		dc.OsVersion = fmt.Sprint(12 + r.IntN(3))
		dc.ScreenWidth, dc.ScreenHeight = 1080, 2400
		dc.Carrier = pick(r, []string{"Orange", "Telekom", "AT&T", ""})
		dc.IsJailbroken = r.IntN(100) == 0
	default: // web
		dc.Platform, dc.DeviceModel, dc.OsVersion = causalityv1.Platform_PLATFORM_WEB, "Chrome", "124.0"
		dc.ScreenWidth, dc.ScreenHeight = 1920, 1080
		dc.NetworkType = causalityv1.NetworkType_NETWORK_TYPE_ETHERNET
	}
	return dc
}

// envelope returns one event with the given client id.
func (g *eventGen) envelope(id string) *causalityv1.EventEnvelope {
	r := g.rng
	d := &g.devices[r.IntN(len(g.devices))]
	e := &causalityv1.EventEnvelope{
		Id:            id,
		AppId:         g.app,
		DeviceId:      d.id,
		TimestampMs:   g.now.Add(-time.Duration(r.Int64N(int64(5 * time.Minute)))).UnixMilli(),
		CorrelationId: d.session,
		DeviceContext: d.ctx,
	}
	prod := r.IntN(len(products))
	productID := fmt.Sprintf("sku-%04d", 1000+prod*7+r.IntN(7))
	price := int64(999 + r.IntN(20000))
	switch w := r.IntN(100); {
	case w < 35:
		e.Payload = &causalityv1.EventEnvelope_ScreenView{ScreenView: &causalityv1.ScreenView{
			ScreenName:     pick(r, screens),
			ScreenClass:    "UIViewController",
			PreviousScreen: pick(r, screens),
			Params:         map[string]string{"source": pick(r, []string{"tab_bar", "deeplink", "push", "back"}), "ab_bucket": fmt.Sprint(r.IntN(4))},
		}}
	case w < 70:
		e.Payload = &causalityv1.EventEnvelope_ButtonTap{ButtonTap: &causalityv1.ButtonTap{
			ButtonId:    pick(r, buttons),
			ButtonText:  pick(r, []string{"Buy now", "Add to cart", "Search", "Apply", "Continue"}),
			ScreenName:  pick(r, screens),
			Coordinates: &causalityv1.Coordinates{X: float32(r.IntN(1179)), Y: float32(r.IntN(2556))},
		}}
	case w < 82:
		e.Payload = &causalityv1.EventEnvelope_AddToCart{AddToCart: &causalityv1.AddToCart{
			ProductId:   productID,
			ProductName: products[prod],
			Quantity:    int32(1 + r.IntN(3)),
			PriceCents:  price,
			Currency:    pick(r, currencies),
			CartId:      "cart-" + d.session,
		}}
	case w < 85:
		n := 1 + r.IntN(4)
		pc := &causalityv1.PurchaseComplete{
			OrderId:       fmt.Sprintf("ord-%010d", r.Uint32()),
			CartId:        "cart-" + d.session,
			ItemCount:     int32(n),
			Currency:      pick(r, currencies),
			PaymentMethod: pick(r, payments),
		}
		for range n {
			p := r.IntN(len(products))
			item := &causalityv1.PurchaseItem{ProductId: fmt.Sprintf("sku-%04d", 1000+p*7), ProductName: products[p], Quantity: int32(1 + r.IntN(2)), PriceCents: int64(999 + r.IntN(20000))}
			pc.Items = append(pc.Items, item)
			pc.TotalCents += item.PriceCents * int64(item.Quantity)
		}
		e.Payload = &causalityv1.EventEnvelope_PurchaseComplete{PurchaseComplete: pc}
	default:
		e.Payload = &causalityv1.EventEnvelope_CustomEvent{CustomEvent: &causalityv1.CustomEvent{
			EventName:    pick(r, customNames),
			StringParams: map[string]string{"category": pick(r, categories), "placement": pick(r, []string{"feed", "pdp", "cart"})},
			IntParams:    map[string]int64{"position": int64(r.IntN(40)), "duration_ms": int64(r.IntN(60000))},
			FloatParams:  map[string]float64{"progress": float64(r.IntN(1000)) / 1000},
			BoolParams:   map[string]bool{"logged_in": r.IntN(2) == 0},
		}}
	}
	return e
}
